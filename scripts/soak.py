"""Soak test: a long training run while the resident memory of every process is sampled.

Reports, for the main process and for each worker together with its ViZDoom engine, the RSS at
``--from-minute`` and at the end and the growth between them (the flatness check), plus the peak.

Usage: python scripts/soak.py [--env doom] [--workers 8] [--minutes 30] [--from-minute 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from a3c_exp.overrides import train_command
from a3c_exp.runtime.processes import tree_memory, worker_processes


def main() -> int:
    """Run, sample, report; exit 1 if any process grew by more than --max-growth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="doom")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--from-minute", type=float, default=5.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--max-growth", type=float, default=0.10)
    parser.add_argument("--json", type=Path, default=Path("soak.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="a3c-soak-") as tmp:
        cmd = train_command(
            f"{tmp}/run",
            f"env={args.env}",
            f"workers={args.workers}",
            "logger=wandb",
            f"max_time={args.minutes * 60}",
            "total_steps=1000000000",
            "target_reward=null",
            "log_every=10",
        )
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        main_proc = psutil.Process(proc.pid)
        samples: list[dict] = []
        start = time.monotonic()
        while proc.poll() is None:
            time.sleep(args.every)
            try:
                workers = worker_processes(proc.pid)
                sample = {
                    "t": time.monotonic() - start,
                    "main": main_proc.memory_info().rss / 2**20,
                }
                for index, worker in enumerate(workers):
                    sample[f"worker{index}"] = tree_memory(worker)[0] / 2**20
                samples.append(sample)
            except psutil.Error:
                continue
    keys = sorted({k for s in samples for k in s if k != "t"})
    late = [s for s in samples if s["t"] >= args.from_minute * 60]
    report, ok = {}, True
    for key in keys:
        series = [s[key] for s in late if s.get(key)]  # 0: the process was already exiting
        if len(series) < 2:
            continue
        growth = series[-1] / series[0] - 1
        report[key] = {
            "at_from_minute": series[0],
            "at_end": series[-1],
            "growth": growth,
            "peak": max(s.get(key, 0) for s in samples),
        }
        ok &= growth < args.max_growth
        print(
            f"{key:>8}: {series[0]:7.1f} MiB at {args.from_minute:g} min -> {series[-1]:7.1f} "
            f"MiB at end ({100 * growth:+.1f}%), peak {report[key]['peak']:.1f} MiB"
        )
    args.json.write_text(
        json.dumps(
            {"args": vars(args), "report": report, "samples": samples}, default=str, indent=2
        )
    )
    print("PASS" if ok else "FAIL", f"(growth limit {100 * args.max_growth:.0f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
