"""Fault injection: train while killing a random worker every T seconds, then SIGTERM the run.

Afterwards it checks that every kill was survived (the worker restarted), the final checkpoint
loads, the global step never went backwards, no process of the run is left, and the counters
held: the checkpoint's ``global_step`` against ``rollout_len x envs_per_worker x (updates +
skipped)`` (at most one update per worker apart). Prints the figures and exits non-zero if a
check fails. ``--runtime ray`` kills worker actors (``ray::RayWorker``) instead of processes.

Usage: python scripts/chaos.py [--env doom] [--workers 8] [--minutes 10] [--kill-every 30]
                               [--runtime local|ray]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from a3c_exp.overrides import train_command
from a3c_exp.runtime.processes import worker_processes


def main() -> int:
    """Run the chaos session; return 0 if every check passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="doom")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every", type=float, default=30.0, help="seconds between kills")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runtime", choices=["local", "ray"], default="local")
    parser.add_argument("--run-dir", type=Path, help="keep the run here (default: a temp dir)")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = tempfile.TemporaryDirectory(prefix="a3c-chaos-")
    run_dir = args.run_dir or Path(tmp.name) / "run"
    # every kill leaves at least 10 s before the final SIGTERM for the restart to happen
    kills = int((args.minutes * 60 - 10) // args.kill_every)
    cmd = train_command(
        run_dir,
        f"env={args.env}",
        f"workers={args.workers}",
        "logger=none",
        "total_steps=1000000000",
        "target_reward=null",
        f"max_restarts={kills + 1}",
        "log_every=2",
        "checkpoint_every=50000",
        f"runtime={args.runtime}",
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    main_proc = psutil.Process(proc.pid)
    seen: set[int] = set()
    start = time.monotonic()
    killed = []
    for index in range(kills):
        time.sleep(max(0.0, start + (index + 1) * args.kill_every - time.monotonic()))
        for child in main_proc.children(recursive=True):
            seen.add(child.pid)
        workers = _victims(main_proc, args.runtime)
        if workers:
            victim = rng.choice(workers)
            victim.send_signal(signal.SIGKILL)
            killed.append(victim.pid)
            print(f"{time.monotonic() - start:6.0f} s: killed worker pid {victim.pid}", flush=True)
    time.sleep(max(0.0, start + args.minutes * 60 - time.monotonic()))
    for child in main_proc.children(recursive=True):
        seen.add(child.pid)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    time.sleep(1.0)

    from a3c_exp.checkpoint import load_checkpoint

    restarts = output.count("restarting it")
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = [
            (float(r["Perf/Time"]), int(float(r["global_step"]))) for r in csv.DictReader(handle)
        ]
    steps = [step for _, step in rows]
    monotonic = all(a <= b for a, b in itertools.pairwise(steps))
    stall, since = 0.0, rows[0][0]  # longest time the global step stood still after start-up
    for (_, before), (now, after) in itertools.pairwise(rows):
        if after > before:
            since = now
        elif after > steps[0]:
            stall = max(stall, now - since)
    payload = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    left = [
        pid
        for pid in seen
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    counters = payload["a3c"]
    updates = counters["updates"]
    stored = payload["hyper_parameters"]["cfg"]
    per_update = int(stored["rollout_len"]) * int(stored["envs_per_worker"])
    counted = per_update * (updates + int(counters.get("skipped_updates", 0)))
    gap = counters["global_step"] - counted
    optimizer_steps = {
        int(state["step"]) for state in payload["optimizer_states"][0]["state"].values()
    }
    checks = {
        f"kills survived ({restarts} restarts for {len(killed)} kills)": restarts >= len(killed),
        f"run ended by SIGTERM with code {proc.returncode}": proc.returncode == 130,
        f"final checkpoint loads (global step {payload['a3c']['global_step']:,})": True,
        f"global step monotonic over {len(steps)} reports": monotonic,
        f"training never stalled (longest stall {stall:.0f} s, limit 60 s)": stall < 60,
        f"no process left ({len(seen)} seen)": not left,
        f"optimizer steps {sorted(optimizer_steps)} = updates applied ({updates:,})": (
            optimizer_steps == {updates}
        ),
        f"global step {counters['global_step']:,} - {per_update} x (updates + skipped) "
        f"{counted:,} = {gap:,} (at most {args.workers} updates apart)": (
            abs(gap) <= args.workers * per_update
        ),
    }
    for text, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    tmp.cleanup()
    return 0 if all(checks.values()) else 1


def _victims(main_proc: psutil.Process, runtime: str) -> list[psutil.Process]:
    """The run's worker processes (local) or worker actor processes (Ray) alive now."""
    if runtime == "local":
        return worker_processes(main_proc.pid)
    actors = []
    for child in main_proc.children(recursive=True):
        try:
            if child.name().startswith("ray::RayWorker"):
                actors.append(child)
        except psutil.NoSuchProcess:
            continue
    return actors


if __name__ == "__main__":
    sys.exit(main())
