"""Training throughput against the environment's own ceiling, side by side in one run.

For each worker count it measures
  * the ceiling: the same envs (same preprocessing and frame skip), stepped with random actions
    by that many processes, no network;
  * a3c-exp training: agent steps/s after a warm-up, and separately before and after the task is
    solved (last-100 mean reward >= --solved), the per-step time split of a worker (env, acting,
    learning, gradient hand-off, optimizer, weight sync) and the peak resident memory of each
    worker together with its ViZDoom engine;
then prints a table and the training/ceiling ratio, and writes JSON.

Usage: python scripts/bench_throughput.py [--env doom] [--workers 1 2 4 8] [--seconds 120]
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from a3c_exp.config import EnvConfig
from a3c_exp.overrides import train_command
from a3c_exp.reporting.stats import TIMING_PHASES, timing_key
from a3c_exp.runtime.processes import tree_memory, worker_processes

PHASES = TIMING_PHASES


def _random_stepper(
    env_cfg: dict, n_envs: int, seconds: float, workdir: str, seed: int, out
) -> None:
    import numpy as np

    from a3c_exp.envs import make_env

    envs = [make_env(env_cfg, rank=seed * n_envs + i, workdir=workdir) for i in range(n_envs)]
    rng = np.random.default_rng(seed)
    for i, env in enumerate(envs):
        env.reset(seed=seed * n_envs + i)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for env in envs:  # round robin, as a worker steps its envs
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            steps += 1
            if terminated or truncated:
                env.reset()
    out.put(steps / (time.perf_counter() - start))
    for env in envs:
        env.close()


def ceiling(
    env_cfg: EnvConfig, processes: int, n_envs: int, seconds: float, workdir: Path
) -> float:
    """Agent steps/s of ``processes`` processes, ``n_envs`` envs each, stepping random actions
    (no network)."""
    from a3c_exp.envs.vizdoom_env import prepare_workdir

    prepare_workdir(workdir)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_random_stepper, args=(env_cfg, n_envs, seconds, str(workdir), i, out))
        for i in range(processes)
    ]
    for proc in procs:
        proc.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for proc in procs:
        proc.join()
    return total


def train_run(args, workers: int, run_dir: Path) -> dict:
    """One bounded training run; returns its throughput, time split and memory figures."""
    cmd = train_command(
        run_dir,
        f"env={args.env}",
        f"workers={workers}",
        "logger=none",
        f"max_time={args.seconds}",
        "log_every=2",
        "total_steps=1000000000",
        "target_reward=null",
        "video_every=0",
        f"seed={args.seed}",
        *args.overrides,
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    main = psutil.Process(proc.pid)
    peak_worker, peak_worker_uss, peak_worker_pss, peak_main = 0, 0, 0, 0
    while proc.poll() is None:
        try:
            peak_main = max(peak_main, main.memory_info().rss)
            for worker in worker_processes(proc.pid):
                memory = tree_memory(worker)
                peak_worker = max(peak_worker, memory.rss)
                peak_worker_uss = max(peak_worker_uss, memory.uss)
                peak_worker_pss = max(peak_worker_pss, memory.pss)
        except psutil.NoSuchProcess:
            pass
        time.sleep(1.0)
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["Perf/Time"]) >= args.warmup]
    return summarise(rows, args.solved) | {
        "peak_worker_mb": peak_worker / 1e6,
        "peak_worker_uss_mb": peak_worker_uss / 1e6,
        "peak_worker_pss_mb": peak_worker_pss / 1e6,
        "peak_main_mb": peak_main / 1e6,
    }


def _speed(rows: list[dict]) -> float | None:
    if len(rows) < 2:
        return None
    steps = float(rows[-1]["global_step"]) - float(rows[0]["global_step"])
    return steps / (float(rows[-1]["Perf/Time"]) - float(rows[0]["Perf/Time"]))


def summarise(rows: list[dict], solved: float) -> dict:
    """Steps/s overall and before/after solving, and the mean per-step time of each phase."""
    reward = "Perf/Mean Reward (last 100)"
    solved_at = next(
        (
            i
            for i, r in enumerate(rows)
            if r[reward] and float(r[reward]) >= solved and float(r["Perf/Episodes"]) >= 100
        ),
        None,
    )
    split = {}
    for phase in PHASES:
        values = [float(r[timing_key(phase)]) for r in rows if r.get(timing_key(phase))]
        split[phase] = sum(values) / len(values) if values else None
    return {
        "steps_per_s": _speed(rows),
        "before_solved": _speed(rows[: solved_at + 1] if solved_at is not None else rows),
        "after_solved": _speed(rows[solved_at:]) if solved_at is not None else None,
        "solved_at_s": float(rows[solved_at]["Perf/Time"]) if solved_at is not None else None,
        "ms_per_step": split,
    }


def main() -> None:
    """Measure, print the table, write JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Arguments after -- are passed to every training run, e.g. -- envs_per_worker=1",
    )
    parser.add_argument("--env", default="doom", help="env config name (conf/env/)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=120.0, help="time budget per run")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds ignored at start")
    parser.add_argument("--ceiling-seconds", type=float, default=20.0)
    parser.add_argument("--solved", type=float, default=0.75, help="reward that counts as solved")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("bench_throughput.json"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every training run")
    args = parser.parse_args()

    from hydra import compose, initialize_config_dir

    from a3c_exp.config import register_configs
    from a3c_exp.overrides import CONFIG_DIR
    from a3c_exp.runtime.checks import load_validated
    from a3c_exp.runtime.cpus import available_cpus

    register_configs(cpu_count=available_cpus)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        composed = load_validated(compose("train", [f"env={args.env}", *args.overrides]))
    env_cfg, n_envs = composed.env, composed.envs_per_worker

    results = []
    with tempfile.TemporaryDirectory(prefix="a3c-bench-") as tmp:
        for workers in args.workers:
            ceil = ceiling(env_cfg, workers, n_envs, args.ceiling_seconds, Path(tmp) / "ceiling")
            run = train_run(args, workers, Path(tmp) / f"w{workers}")
            results.append({"workers": workers, "ceiling_steps_per_s": ceil, **run})
            print(json.dumps(results[-1]), flush=True)

    print(
        f"\n{args.env}, envs_per_worker={n_envs}, {args.seconds:.0f} s per run, "
        f"machine: {psutil.cpu_count()} CPUs; overrides: {' '.join(args.overrides) or '-'}"
    )
    print(
        "MB/wkr: peak resident MB (10^6 B) of a worker with its engines; USS: its unshared part; "
        "PSS: its share of the machine's memory (shared pages split between their users)"
    )
    header = (
        f"{'workers':>7} {'ceiling':>8} {'train':>7} {'ratio':>6} {'before':>7} "
        f"{'after':>7} {'solved s':>8} {'MB/wkr':>7} {'USS':>5} {'PSS':>5}  ms/step "
        + " ".join(PHASES)
    )
    print(header)
    best = max((r["steps_per_s"] or 0) for r in results)
    for r in results:
        split = " ".join(f"{(r['ms_per_step'][p] or 0):.2f}" for p in PHASES)
        fmt = lambda v, w=7: f"{v:>{w}.0f}" if v is not None else f"{'-':>{w}}"  # noqa: E731
        print(
            f"{r['workers']:>7} {fmt(r['ceiling_steps_per_s'], 8)} {fmt(r['steps_per_s'])} "
            f"{(r['steps_per_s'] or 0) / r['ceiling_steps_per_s']:>6.2f} "
            f"{fmt(r['before_solved'])} {fmt(r['after_solved'])} {fmt(r['solved_at_s'], 8)} "
            f"{r['peak_worker_mb']:>7.0f} {r['peak_worker_uss_mb']:>5.0f} "
            f"{r['peak_worker_pss_mb']:>5.0f}  {split}"
        )
    if len(results) > 1:
        first = results[0]["steps_per_s"] or 1
        print(
            "scaling vs first: "
            + ", ".join(f"{r['workers']}w {(r['steps_per_s'] or 0) / first:.2f}x" for r in results)
        )
        most = max(results, key=lambda r: r["workers"])
        print(f"{most['workers']} workers / best: {(most['steps_per_s'] or 0) / best:.2f}")
    args.json.write_text(
        json.dumps({"args": vars(args), "results": results}, default=str, indent=2)
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
