"""Time to solve: wall time and env steps until the last-100 mean reward reaches a target.

Runs ``a3c_exp.train`` once per seed with ``target_reward`` set (the run stops as soon as it is
reached) and reports, per seed, the wall time of the whole command (start-up, spawning workers
and the final checkpoint included), the training time and env steps at which the target was
first reached, and the median over seeds. Tasks: Doom basic (mean reward >= 0.75) and CartPole
(>= 475), each with its default config unless overrides are given.

Usage: python scripts/bench_solve.py [--task doom cartpole] [--seeds 0 1 2] [-- key=value ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from a3c_exp.overrides import train_command

TASKS = {"doom": ("env=doom", 0.75), "cartpole": ("env=cartpole", 475.0)}
REWARD = "Perf/Mean Reward (last 100)"


def _solved(row: dict, target: float) -> bool:
    """The row's last-100 mean reaches the target over a full window of 100 episodes."""
    return bool(row[REWARD]) and float(row[REWARD]) >= target and float(row["Perf/Episodes"]) >= 100


def solve_run(task: str, seed: int, overrides: list[str], max_seconds: float, run_dir: Path):
    """One run to the target; returns seconds and steps to solve (None if it did not)."""
    env_override, target = TASKS[task]
    cmd = train_command(
        run_dir,
        env_override,
        "logger=none",
        "video_every=0",
        "log_every=1",
        f"target_reward={target}",
        f"max_time={max_seconds}",
        "total_steps=1000000000",
        f"seed={seed}",
        *overrides,
    )
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"{task} seed {seed}: train exited {proc.returncode}\n{proc.stderr[-2000:]}"
        )
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    solved = next((r for r in rows if _solved(r, target)), None)
    return {
        "task": task,
        "seed": seed,
        "target": target,
        "solved": solved is not None,
        "wall_s": wall if solved else None,
        "train_s_at_solve": float(solved["Perf/Time"]) if solved else None,
        "steps_at_solve": int(float(solved["global_step"])) if solved else None,
        "steps_per_s": float(rows[-1]["global_step"]) / float(rows[-1]["Perf/Time"]),
    }


def main() -> None:
    """Run every task for every seed, print a table with medians, write JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Arguments after -- are passed to a3c_exp.train, e.g. -- workers=2 optim.lr=2e-4",
    )
    parser.add_argument("--task", nargs="+", choices=sorted(TASKS), default=["doom", "cartpole"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-seconds", type=float, default=600.0, help="give up after this")
    parser.add_argument("--json", type=Path, default=Path("bench_solve.json"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="a3c-solve-") as tmp:
        for task in args.task:
            for seed in args.seeds:
                run = solve_run(
                    task, seed, args.overrides, args.max_seconds, Path(tmp) / f"{task}-{seed}"
                )
                results.append(run)
                print(json.dumps(run), flush=True)

    print(f"\nmachine: {psutil.cpu_count()} CPUs; overrides: {' '.join(args.overrides) or '-'}")
    print(f"{'task':>8} {'seed':>4} {'wall s':>7} {'train s':>7} {'steps':>9} {'steps/s':>8}")
    medians = {}
    for task in args.task:
        runs = [r for r in results if r["task"] == task]
        for r in runs:
            wall = f"{r['wall_s']:.0f}" if r["solved"] else "unsolved"
            train = f"{r['train_s_at_solve']:.0f}" if r["solved"] else "-"
            steps = f"{r['steps_at_solve']}" if r["solved"] else "-"
            print(
                f"{task:>8} {r['seed']:>4} {wall:>7} {train:>7} {steps:>9} {r['steps_per_s']:>8.0f}"
            )
        # an unsolved run counts as slower than any solved one
        walls = [r["wall_s"] if r["solved"] else float("inf") for r in runs]
        medians[task] = statistics.median(walls)
        print(f"{task:>8} median wall time to solve: {medians[task]:.0f} s")
    args.json.write_text(
        json.dumps(
            {
                "args": vars(args) | {"json": str(args.json)},
                "runs": results,
                "median_wall_s": medians,
            },
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
