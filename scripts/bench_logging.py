"""Cost of W&B logging: the same training with ``logger=wandb`` and ``logger=none``, side by side.

Runs are interleaved (wandb, none, wandb, none, ...) with the same seed and time budget, and the
steps/s after a warm-up are compared. Prints a table and the ratio; ``--json`` saves the figures.

Usage: python scripts/bench_logging.py [--env doom] [--workers 2] [--seconds 90] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from a3c_exp.overrides import train_command


def steady_speed(run_dir: Path, warmup: float) -> float:
    """Env steps per second between the first report after ``warmup`` seconds and the last."""
    import csv

    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["Perf/Time"]) >= warmup]
    if len(rows) < 2:
        raise RuntimeError(f"{run_dir}: too few reports after the {warmup}s warm-up")
    first, last = rows[0], rows[-1]
    steps = float(last["global_step"]) - float(first["global_step"])
    return steps / (float(last["Perf/Time"]) - float(first["Perf/Time"]))


def run_once(out: Path, env: str, workers: int, seconds: float, logger: str, seed: int) -> Path:
    """One bounded training run; returns its run directory."""
    run_dir = out / f"{logger}-{len(list(out.glob(logger + '-*')))}"
    cmd = train_command(
        run_dir,
        f"env={env}",
        f"workers={workers}",
        f"logger={logger}",
        f"max_time={seconds}",
        f"seed={seed}",
        "total_steps=1000000000",
        "target_reward=null",
        "log_every=2",
    )
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return run_dir


def main() -> None:
    """Run the comparison and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="doom")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=90.0, help="time budget of each run")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds ignored at start")
    parser.add_argument("--repeats", type=int, default=2, help="runs per logger, interleaved")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    speeds: dict[str, list[float]] = {"wandb": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="a3c-bench-logging-") as tmp:
        for _ in range(args.repeats):
            for logger in ("wandb", "none"):
                run_dir = run_once(
                    Path(tmp), args.env, args.workers, args.seconds, logger, args.seed
                )
                speeds[logger].append(steady_speed(run_dir, args.warmup))
                print(f"{logger:>6}: {speeds[logger][-1]:8.1f} steps/s", flush=True)
    wandb_speed = statistics.mean(speeds["wandb"])
    none_speed = statistics.mean(speeds["none"])
    ratio = wandb_speed / none_speed
    print(f"\nenv={args.env} workers={args.workers} {args.seconds:.0f}s x {args.repeats} each")
    print(f"logger=wandb {wandb_speed:8.1f} steps/s   logger=none {none_speed:8.1f} steps/s")
    print(f"ratio wandb/none = {ratio:.3f}  (logging cost {100 * (1 - ratio):+.1f}%)")
    if args.json:
        args.json.write_text(
            json.dumps({"speeds": speeds, "ratio": ratio, **vars(args)}, default=str, indent=2)
        )


if __name__ == "__main__":
    main()
