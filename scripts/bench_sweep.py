"""Pruning's worth: the same Optuna search with the median pruner and without it, side by side.

Runs ``hydra/sweeper=a3c_optuna`` twice on CartPole (TPE, same sampler seed, ``n_trials``
trials, ``parallel_local`` with ``slots`` jobs at once, every trial up to the same step budget,
no early stop at a target) and prints, for each: the wall time of the whole command, the best
value found, how many trials were pruned, and the slot use from the sweeper's ``schedule.csv``
(idle slot-seconds while trials remained, i.e. from the first job's start to the last job's
start). The ratio of the wall times is the figure to compare across days, measured one search
after the other on a quiet machine. ``--together`` runs both at the same time, so both see the
same machine; but then each gets half of it while both run, which pulls the wall-time ratio
towards 1 (work ratio r reads as 2r / (1 + r)): the slot-seconds the jobs held are the figure
to read then.

A search's best value is the maximum of many one-seed values, so it flatters the search that
finished more trials (16 full trials against a pruned search's handful). ``--recheck-seeds K``
(default 3) therefore trains each search's best config again with K fresh seeds (seed 1000
on, never seen by either search) and prints their mean with a 95% bootstrap interval: the
figure that says whether pruning lost the better config.

Usage: python scripts/bench_sweep.py [--trials 16] [--steps 40000] [--slots 2] [--together]
                                     [--recheck-seeds 3] [-- key=value ...]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from a3c_exp.reporting.seed_stats import SeedStats
from a3c_exp.sweep import read_job_records

RECHECK_FIRST_SEED = 1000


def job_overrides(args: argparse.Namespace) -> list[str]:
    """What every job of both searches (and of the recheck) trains with."""
    return [
        "env=cartpole",
        "workers=1",
        f"total_steps={args.steps}",
        "target_reward=null",
        "checkpoint_every=0",
        "video_every=0",
        "logger=none",
    ]


def start_sweep(
    sweep_dir: Path, pruner: str, args: argparse.Namespace, extra: list[str]
) -> subprocess.Popen:
    """Start one search (its log beside its directory)."""
    cmd = [
        sys.executable,
        "-m",
        "a3c_exp.train",
        "--multirun",
        "hydra/sweeper=a3c_optuna",
        "hydra/launcher=parallel_local",
        f"hydra.launcher.array_parallelism={args.slots}",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.n_trials={args.trials}",
        f"hydra.sweeper.pruner={pruner}",
        *job_overrides(args),
        *extra,
    ]
    log = open(sweep_dir.parent / f"{pruner}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=sweep_dir.parent)


def recheck_command(
    recheck_dir: Path, best_params: dict[str, object], args: argparse.Namespace, extra: list[str]
) -> list[str]:
    """A grid sweep that trains ``best_params`` again with fresh seeds (no pruning)."""
    seeds = ",".join(str(RECHECK_FIRST_SEED + i) for i in range(args.recheck_seeds))
    params = [f"{key}={value}" for key, value in best_params.items()]
    swept = [o for o in extra if not o.startswith("hydra.sweeper.")]
    return [
        sys.executable,
        "-m",
        "a3c_exp.train",
        "--multirun",
        "hydra/launcher=parallel_local",
        f"hydra.launcher.array_parallelism={args.slots}",
        f"hydra.sweep.dir={recheck_dir}",
        *job_overrides(args),
        *swept,
        *params,
        f"seed={seeds}",
    ]


def recheck(sweep_dir: Path, args: argparse.Namespace, extra: list[str]) -> SeedStats:
    """Train the search's best config with fresh seeds; their statistics."""
    found = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    recheck_dir = sweep_dir.parent / f"{sweep_dir.name}_recheck"
    cmd = recheck_command(recheck_dir, found["best_params"], args, extra)
    with open(sweep_dir.parent / f"{sweep_dir.name}_recheck.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=sweep_dir.parent, check=True)
    values = [
        float(r["objective"]) for r in read_job_records(recheck_dir) if r["status"] == "completed"
    ]
    return SeedStats.of(values)


def wait(sweeps: dict[str, subprocess.Popen], start: float) -> dict[str, float]:
    """Wait for every sweep; return each one's wall time from ``start``."""
    walls: dict[str, float] = {}
    while len(walls) < len(sweeps):
        for name, sweep in sweeps.items():
            if name not in walls and sweep.poll() is not None:
                if sweep.returncode != 0:
                    raise SystemExit(f"sweep {name} exited {sweep.returncode}")
                walls[name] = time.monotonic() - start
        time.sleep(0.5)
    return walls


def job_seconds(sweep_dir: Path) -> float:
    """Slot-seconds the jobs held, start to end (the CPU the search spent, whatever the load)."""
    with open(sweep_dir / "schedule.csv", newline="") as handle:
        return sum(
            float(r["ended_at"]) - float(r["started_at"])
            for r in csv.DictReader(handle)
            if r["started_at"] and r["ended_at"]
        )


def slot_use(sweep_dir: Path, slots: int) -> tuple[float, float]:
    """(idle slot-seconds, all slot-seconds) from the first job's start to the last one's."""
    with open(sweep_dir / "schedule.csv", newline="") as handle:
        jobs = [
            (float(r["started_at"]), float(r["ended_at"]))
            for r in csv.DictReader(handle)
            if r["started_at"] and r["ended_at"]
        ]
    start, end = min(s for s, _ in jobs), max(s for s, _ in jobs)
    busy = sum(max(0.0, min(e, end) - max(s, start)) for s, e in jobs)
    total = slots * (end - start)
    return total - busy, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="keep the sweeps here")
    parser.add_argument(
        "--pruners",
        nargs="+",
        choices=("median", "none"),
        default=["median", "none"],
        help="searches to run (one alone: to try pruner settings against an earlier 'none')",
    )
    parser.add_argument("--together", action="store_true", help="run both sweeps at once")
    parser.add_argument(
        "--recheck-seeds",
        type=int,
        default=3,
        help="train each search's best config again with this many fresh seeds (0: no recheck)",
    )
    parser.add_argument("extra", nargs="*", help="more overrides for both sweeps")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}; sweeps in {out}")
    walls: dict[str, float] = {}
    if args.together:
        start = time.monotonic()
        sweeps = {p: start_sweep(out / p, p, args, args.extra) for p in args.pruners}
        walls = wait(sweeps, start)
    else:
        for pruner in args.pruners:
            start = time.monotonic()
            walls.update(wait({pruner: start_sweep(out / pruner, pruner, args, args.extra)}, start))
    held: dict[str, float] = {}
    for pruner, wall in walls.items():
        sweep_dir = out / pruner
        held[pruner] = job_seconds(sweep_dir)
        found = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
        idle, total = slot_use(sweep_dir, args.slots)
        best = found.get("best_value", float("nan"))
        print(
            f"pruner={pruner:6s} wall {wall:7.1f} s  best {best:7.2f}"
            f"  trials {found['trials']}  jobs held {held[pruner]:7.1f} slot-s"
            f"  idle slots {idle:6.1f} of {total:7.1f} slot-s ({100 * idle / total:.1f}%)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if {"median", "none"} <= set(walls):
        print(f"wall time with the median pruner / without: {walls['median'] / walls['none']:.2f}")
        print(f"slot-seconds with the median pruner / without: {held['median'] / held['none']:.2f}")
    if args.recheck_seeds:
        for pruner in walls:
            stats = recheck(out / pruner, args, args.extra)
            interval = (
                f"[{stats.ci_low:.1f}, {stats.ci_high:.1f}]" if stats.ci_low is not None else "-"
            )
            print(
                f"pruner={pruner:6s} best config, {stats.n} fresh seeds: mean {stats.mean:.1f}"
                f" {interval}, IQM {stats.iqm:.1f}"
            )


if __name__ == "__main__":
    main()
