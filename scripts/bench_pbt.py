"""Population-based training against random search with the same env steps, side by side.

For each repeat (a different sweeper seed): a PBT population (``hydra/sweeper=a3c_pbt``,
``--population`` members of ``--steps`` env steps of their own each) and a random search
(``hydra/sweeper=a3c_optuna sampler=random pruner=none``, as many trials of ``--steps`` env
steps each), over the same ``params`` and on the same launcher and slots, one after the other.
For each method it prints:

* the best member's or trial's final checkpoint evaluated over ``--episodes`` episodes;
* the time to target: seconds from the sweep's first job start until any member's or trial's
  last-100 mean first reached the target (read from each job's ``metrics.csv`` timestamps);
* the env steps trained in all, and for PBT the share of slot time not spent training (job
  start-up, reading checkpoints, exploit/explore) and the idle slot-seconds while members
  waited.

Then, per task, how many repeats PBT's best evaluation was at least random search's, and the
ratio of the median times to target. Writes everything as JSON.

Usage: python scripts/bench_pbt.py --task cartpole [--repeats 3] [--out pbt.json]
       python scripts/bench_pbt.py --task health_gathering --repeats 1
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPACE = (
    "optim.lr=tag(log, interval(1e-4, 3e-3))",
    "loss.entropy_coef=tag(log, interval(1e-4, 3e-2))",
)
"""The values both methods search."""


@dataclass(frozen=True)
class Task:
    """A task: its overrides, budget per member, ready interval, target and slots."""

    overrides: tuple[str, ...]
    steps: int  # env steps of one member or trial
    ready_every: int
    target: float  # in the run's own reward units (reward_scale applied)
    target_label: str
    workers: int


TASKS = {
    "cartpole": Task(
        ("env=cartpole", "workers=1", "checkpoint_every=0"),
        steps=500_000,  # ~2.5 minutes of a member on 1 worker; 475 is reached within it
        ready_every=100_000,  # intervals of ~30 s: a job's start-up is a small share of them
        target=475.0,
        target_label="475",
        workers=1,
    ),
    "health_gathering": Task(
        ("env=doom_health_gathering", "workers=2", "checkpoint_every=0"),
        steps=1_000_000,  # ~10 minutes of a member on 2 workers
        ready_every=125_000,
        target=20.0,  # 2,000 tics, reward_scale 0.01
        target_label="2,000 tics",
        workers=2,
    ),
}


def _env() -> dict[str, str]:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_sweep(sweep_dir: Path, method: str, task: Task, seed: int, population: int) -> float:
    """Run one search to its end; its wall seconds."""
    common = [
        "--multirun",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra/launcher=parallel_local",
        *task.overrides,
        f"total_steps={task.steps}",
        "target_reward=null",
        "logger=none",
        "video_every=0",
    ]
    if method == "pbt":
        sweeper = [
            "hydra/sweeper=a3c_pbt",
            f"hydra.sweeper.population={population}",
            f"hydra.sweeper.ready_every={task.ready_every}",
            f"hydra.sweeper.seed={seed}",
        ]
    else:
        sweeper = [
            "hydra/sweeper=a3c_optuna",
            "hydra.sweeper.sampler=random",
            "hydra.sweeper.pruner=none",
            f"hydra.sweeper.n_trials={population}",
            f"hydra.sweeper.sampler_seed={seed}",
        ]
    # both search the same space, given on the command line in place of their presets' params
    sweeper += ["hydra.sweeper.params=null", *SPACE]
    command = [sys.executable, "-m", "a3c_exp.train", *common, *sweeper]
    start = time.monotonic()
    with open(sweep_dir.with_suffix(".log"), "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=_env())
    if result.returncode != 0:
        raise SystemExit(f"{method} sweep failed; log: {sweep_dir.with_suffix('.log')}")
    return time.monotonic() - start


def _schedule(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "schedule.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def time_to_target(sweep_dir: Path, target: float) -> float | None:
    """Seconds from the first job's start until some job's last-100 mean reached ``target``."""
    jobs = _schedule(sweep_dir)
    start = min(float(job["started_at"]) for job in jobs)
    hits = []
    for job in jobs:
        path = sweep_dir / job["job"] / "metrics.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                reward = row.get("Perf/Mean Reward (last 100)")
                if reward and float(reward) >= target and row.get("timestamp"):
                    hits.append(float(row["timestamp"]) - start)
                    break
    return min(hits) if hits else None


def best_checkpoint(sweep_dir: Path, method: str) -> Path:
    """The final checkpoint of the best member (PBT) or trial (random search)."""
    if method == "pbt":
        state = json.loads((sweep_dir / "pbt_state.json").read_text())
        scored = [m for m in state["members"] if m["score"] is not None]
        return Path(max(scored, key=lambda m: m["score"])["checkpoint"])
    from a3c_exp.sweep import read_job_records

    best = read_job_records(sweep_dir)[0]  # best objective first
    return Path(best["job_dir"]) / "checkpoints" / "last.ckpt"


def evaluate(checkpoint: Path, episodes: int, out: Path) -> float:
    """The checkpoint's mean reward over ``episodes`` episodes (sampling from the policy)."""
    command = [
        sys.executable,
        "-m",
        "a3c_exp.evaluate",
        f"checkpoint={checkpoint}",
        f"episodes={episodes}",
        f"hydra.run.dir={out}",
    ]
    subprocess.run(command, check=True, capture_output=True, env=_env())
    return float(json.loads((out / "eval.json").read_text())["mean_reward"])


def env_steps(sweep_dir: Path) -> int:
    """Env steps the sweep's jobs trained, all of them."""
    from a3c_exp.sweep import read_job_records

    return sum(int(r.get("total_steps") or 0) for r in read_job_records(sweep_dir))


def measure(method: str, task_name: str, seed: int, args: argparse.Namespace) -> dict:
    """One search and its figures."""
    from hydra_plugins.a3c_exp_sweeper._pbt import slot_use

    task = TASKS[task_name]
    sweep_dir = args.work / f"{task_name}-{method}-seed{seed}"
    print(f"[{task_name}] {method}, seed {seed}", flush=True)
    wall = run_sweep(sweep_dir, method, task, seed, args.population)
    checkpoint = best_checkpoint(sweep_dir, method)
    figures = {
        "method": method,
        "seed": seed,
        "wall_s": wall,
        "best_eval": evaluate(checkpoint, args.episodes, sweep_dir / "eval"),
        "time_to_target_s": time_to_target(sweep_dir, task.target),
        "checkpoint": str(checkpoint),
        **slot_use(sweep_dir),
    }
    if method == "pbt":
        state = json.loads((sweep_dir / "pbt_state.json").read_text())
        figures["idle_slot_seconds"] = state["idle_slot_seconds"]
        figures["own_env_steps"] = sum(m["own_steps"] for m in state["members"])
        figures["exploits"] = sum(
            1 for row in state["lineage"] if int(row["parent"]) != int(row["member"])
        )
    print(f"[{task_name}] {method}, seed {seed}: {figures}", flush=True)
    return figures


def main() -> None:
    """Run the repeats, print the table and the verdicts, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="cartpole")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "bench_pbt")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--steps", type=int, help="env steps of a member or trial (task's own)")
    parser.add_argument("--ready-every", type=int, help="PBT's interval (the task's own)")
    args = parser.parse_args()
    task = TASKS[args.task]
    TASKS[args.task] = dataclasses.replace(
        task,
        steps=args.steps or task.steps,
        ready_every=args.ready_every or task.ready_every,
    )
    args.work.mkdir(parents=True, exist_ok=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for repeat in range(args.repeats):
        for method in ("pbt", "random"):
            results.append(measure(method, args.task, repeat, args))
            if args.out is not None:
                args.out.write_text(json.dumps(results, indent=2))
    task = TASKS[args.task]
    print(f"\n{args.task}: {args.population} members/trials of {task.steps:,} env steps each")
    print("| repeat | method | best eval | time to target | wall | slot overhead |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ttt = f"{r['time_to_target_s']:.0f} s" if r["time_to_target_s"] is not None else "never"
        print(
            f"| {r['seed']} | {r['method']} | {r['best_eval']:.2f} | {ttt} "
            f"| {r['wall_s']:.0f} s | {r['overhead_share']:.1%} |"
        )
    wins = sum(
        pbt["best_eval"] >= rnd["best_eval"]
        for pbt, rnd in zip(results[::2], results[1::2], strict=True)
    )
    times = {
        method: [r["time_to_target_s"] for r in results if r["method"] == method]
        for method in ("pbt", "random")
    }
    print(f"PBT's best >= random search's: {wins} of {args.repeats} repeats")
    never = float("inf")
    medians = {
        m: statistics.median([t if t is not None else never for t in v]) for m, v in times.items()
    }
    if medians["random"] not in (0, never) and medians["pbt"] != never:
        ratio = medians["pbt"] / medians["random"]
        print(f"median time to {task.target_label}: PBT / random = {ratio:.2f}")
    else:
        print(
            f"median time to {task.target_label}: PBT {medians['pbt']}, random {medians['random']}"
        )


if __name__ == "__main__":
    main()
