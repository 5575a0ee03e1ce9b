"""Scenario benchmark: train each preset over several seeds, evaluate each, table the result.

For each scenario: plays 100 episodes with uniformly random actions; then, for each of
``--seeds`` seeds (default 3), trains ``env=<preset> seed=<k>`` on this machine for the budget
(wall minutes, default 2 workers), evaluates that seed's final checkpoint over 100 episodes with
``python -m a3c_exp.evaluate`` (sampling from the policy), and samples the machine's load
average during training (the machine may be shared). Rewards are reported in the game's own
units (the preset's ``reward_scale`` undone). Over the seeds' evaluation means the row gives
their mean, IQM and 95% bootstrap interval (Agarwal et al. 2021, as the sweeps do), and the
median time to the scenario's target over the seeds that reached it. The row (with each seed's
figures, the date and the code's commit) is added to, or replaces its row in,
``docs/results/scenarios.json``, from which ``docs/results/scenarios.md`` and the README's
short table are rendered; the learning curve with the seeds' band goes to
``docs/results/<scenario>_curve.png``. So the table fills over several runs, one scenario at a
time, and each row is written again after each seed (a stopped benchmark keeps its seeds).

Usage: python scripts/bench_scenarios.py --scenario defend_the_center [take_cover ...]
       [--seeds 3] [--first-seed 0] [--minutes 30] [--workers 2] [--random-only] [-- key=value ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "docs" / "results"
README = REPO / "README.md"
TABLE_MARKERS = ("<!-- scenarios-table -->", "<!-- /scenarios-table -->")
REWARD = "Perf/Mean Reward (last 100)"


@dataclass(frozen=True)
class Scenario:
    """A preset, its wall-time budget, the published result to compare with, and the target
    (game units) whose first crossing by the last-100 mean is the time to target."""

    preset: str
    minutes: float
    published: str
    target: float | None = None


SCENARIOS = {
    "basic": Scenario("doom", 5, "75–77 (Sample Factory APPO)", 75),
    "defend_the_center": Scenario(
        "doom_defend_the_center",
        30,
        "24–25 at ~4B frames; 16.2 ± 1.5 at ~10M frames (APPO)",
        10,
    ),
    "defend_the_line": Scenario(
        "doom_defend_the_line", 30, "34.7–43.5; 20.7 ± 4.4 with a smaller model (APPO)", 25
    ),
    "health_gathering": Scenario(
        "doom_health_gathering", 20, "full survival: 2100 tics, reward 2100 (APPO)", 2000
    ),
    "health_gathering_supreme": Scenario(
        "doom_health_gathering_supreme", 30, "survives ~890–1130 tics at 4M frames (APPO)", 700
    ),
    "take_cover": Scenario("doom_take_cover", 30, '750 = "solved"; 1092 ± 556 (World Models)', 750),
    "deadly_corridor": Scenario(
        "doom_deadly_corridor", 30, "1,670–1,920 at billions of frames (APPO)", 1000
    ),
    "my_way_home": Scenario("doom_my_way_home", 30, "0.98 at billions of frames (APPO)", 0.9),
    "predict_position": Scenario("doom_predict_position", 30, "–", 0.5),
    "rocket_basic": Scenario("doom_rocket_basic", 30, "–"),
    "atari_pong": Scenario("atari_pong", 30, "+21 max; A3C paper: 11.4 (FF, 1 day) to 20.7", 0),
}


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _compose(preset: str, overrides: list[str]):
    """The preset's typed config, as a training run would get it."""
    from hydra import compose, initialize_config_dir

    from a3c_exp.config import register_configs
    from a3c_exp.overrides import CONFIG_DIR
    from a3c_exp.runtime.checks import load_validated
    from a3c_exp.runtime.cpus import available_cpus

    register_configs(cpu_count=available_cpus)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return load_validated(compose("train", overrides=[f"env={preset}", *overrides]))


class LoadSampler:
    """Samples the 1-minute load average every ``period`` seconds in a background thread."""

    def __init__(self, period: float = 15.0):
        self.period = period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self.samples.append(os.getloadavg()[0])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def train(name: str, scenario: Scenario, minutes: float, workers: int, extra: list[str], run_dir):
    """Train for ``minutes`` of wall time; returns the load samples and the final env steps."""
    from a3c_exp.overrides import train_command

    cmd = train_command(
        run_dir,
        f"env={scenario.preset}",
        f"workers={workers}",
        "logger=none",
        "video_every=0",
        "log_every=10",
        f"max_time={minutes * 60:g}",
        "total_steps=100000000000",
        "target_reward=null",
        *extra,
    )
    print(f"[{name}] training {minutes:g} min: {' '.join(cmd[2:])}", flush=True)
    with LoadSampler() as load, open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=_python_env())
    if proc.returncode != 0:
        raise SystemExit(f"[{name}] train exited {proc.returncode}; log: {log.name}")
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return load.samples, rows


def evaluate(name: str, run_dir: Path, episodes: int) -> dict:
    """``python -m a3c_exp.evaluate`` on the run's final checkpoint; returns eval.json."""
    out = run_dir / "eval"
    cmd = [
        sys.executable,
        "-m",
        "a3c_exp.evaluate",
        f"checkpoint={run_dir / 'checkpoints' / 'last.ckpt'}",
        f"episodes={episodes}",
        f"hydra.run.dir={out}",
    ]
    print(f"[{name}] evaluating over {episodes} episodes", flush=True)
    subprocess.run(cmd, check=True, capture_output=True, env=_python_env())
    return json.loads((out / "eval.json").read_text())


def random_policy(env_cfg, episodes: int, seed: int, workdir: Path) -> tuple[list, list]:
    """Rewards (game units) and lengths (env steps) of ``episodes`` uniformly random episodes."""

    from a3c_exp.envs import make_env

    env = make_env(env_cfg, rank=0, workdir=str(workdir))
    env.action_space.seed(seed)
    rewards, lengths = [], []
    try:
        for episode in range(episodes):
            env.reset(seed=seed if episode == 0 else None)
            total, length, done = 0.0, 0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total += float(reward)
                length += 1
                done = terminated or truncated
            rewards.append(total / env_cfg.reward_scale)
            lengths.append(length)
    finally:
        env.close()
    return rewards, lengths


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(statistics.fmean(values)), float(statistics.pstdev(values))


def time_to_target(rows: list[dict], scale: float, target: float | None) -> float | None:
    """Seconds of training until the last-100 mean (game units, 100 episodes seen) first
    reached ``target``; None without a target or when it never did."""
    if target is None:
        return None
    for row in rows:
        if not row.get(REWARD) or float(row.get("Perf/Episodes") or 0) < 100:
            continue
        if float(row[REWARD]) / scale >= target:
            return float(row["Perf/Time"])
    return None


def curve_band(
    runs: list[list[dict]], scale: float, points: int = 200
) -> tuple[list[float], list[float], list[float], list[float]] | None:
    """The seeds' last-100 means on a common env-step grid: steps, mean, and a 95% bootstrap
    band of the mean (the mean itself with one seed)."""
    import numpy as np

    from a3c_exp.reporting.seed_stats import mean_interval

    curves = []
    for rows in runs:
        xs = [float(r["global_step"]) for r in rows if r.get(REWARD)]
        ys = [float(r[REWARD]) / scale for r in rows if r.get(REWARD)]
        if len(xs) >= 2:
            curves.append((np.asarray(xs), np.asarray(ys)))
    if not curves:
        return None
    end = min(xs[-1] for xs, _ in curves)
    start = max(xs[0] for xs, _ in curves)
    grid = np.linspace(start, end, points)
    values = np.stack([np.interp(grid, xs, ys) for xs, ys in curves])
    mean = values.mean(axis=0)
    band = mean_interval(values)
    low, high = band if band is not None else (mean, mean)
    return grid.tolist(), mean.tolist(), np.asarray(low).tolist(), np.asarray(high).tolist()


def plot_curve(name: str, runs: list[list[dict]], scale: float, row: dict, path: Path) -> None:
    """The seeds' mean last-100 curve (game units) with its band, each seed thin, against env
    steps; the random baseline and the evaluations' IQM as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for rows in runs:
        points = [(float(r["global_step"]), float(r[REWARD]) / scale) for r in rows if r[REWARD]]
        if points:
            ax.plot(*zip(*points, strict=True), color="tab:blue", alpha=0.25, lw=0.8)
    band = curve_band(runs, scale)
    if band is not None:
        grid, mean, low, high = band
        n = len(runs)
        ax.plot(grid, mean, color="tab:blue", label=f"training: last-100 mean, mean of {n} seeds")
        if n > 1:
            ax.fill_between(grid, low, high, color="tab:blue", alpha=0.2, label="95% interval")
    ax.axhline(row["random_mean"], color="grey", ls="--", label="random policy (100 episodes)")
    if row.get("eval_iqm") is not None:
        ax.axhline(row["eval_iqm"], color="green", ls=":", label="evaluation: IQM over seeds")
    ax.set_xlabel("env steps (all workers)")
    ax.set_ylabel("episode reward (game units)")
    ax.set_title(f"{name}: {row['minutes']:g} min, {row['workers']} workers, {len(runs)} seeds")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(mean: float | None, std: float | None, digits: int | None = None) -> str:
    """``mean ± std``; two decimals for small numbers (my_way_home's rewards are below 1)."""
    if mean is None:
        return "–"
    if digits is None:
        digits = 2 if max(abs(mean), std or 0.0) < 10 else 1
    return f"{mean:,.{digits}f} ± {std:,.{digits}f}"


def _number(value: float, like: float) -> str:
    digits = 2 if abs(like) < 10 else 1
    return f"{value:,.{digits}f}"


def _over_seeds(row: dict) -> str:
    """``IQM [low, high] (n seeds)``, or one seed's ``mean ± std`` for a row of one run."""
    if row.get("eval_iqm") is None:
        return f"{_fmt(row.get('eval_mean'), row.get('eval_std'))} (1 seed)"
    iqm, n = row["eval_iqm"], row["n_seeds"]
    if row.get("eval_ci95_low") is None:
        return f"{_number(iqm, iqm)} ({n} seed{'s' if n > 1 else ''})"
    low, high = row["eval_ci95_low"], row["eval_ci95_high"]
    return f"{_number(iqm, iqm)} [{_number(low, iqm)}, {_number(high, iqm)}] ({n} seeds)"


def render_table(results: dict[str, dict]) -> str:
    """The full markdown table of every measured scenario, in SCENARIOS order."""
    lines = [
        "| scenario | budget | seeds | env steps (mean) | eval: IQM [95% CI] | eval: each seed "
        "| eval length (tics) | random (100 ep.) | time to target (median) | published "
        "| load avg (1 min) | date, commit | curve |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        row = results.get(name)
        if row is None:
            continue
        budget = f"{row['minutes']:g} min, {row['workers']} workers" if row["minutes"] else "–"
        steps = f"{row['env_steps']:,}" if row.get("env_steps") else "–"
        curve = f"[png]({name}_curve.png)" if row.get("env_steps") else "not trained yet"
        each = ", ".join(_number(s["eval_mean"], s["eval_mean"]) for s in row.get("seeds", []))
        target = SCENARIOS[name].target
        ttt = row.get("time_to_target_s")
        reached = f"{row.get('reached_target', 0)}/{row.get('n_seeds', 1)}"
        when = (
            f"{ttt:,.0f} s ({reached} reached {target:g})"
            if ttt is not None
            else (f"not reached ({target:g})" if target is not None and row.get("seeds") else "–")
        )
        stamp = ", ".join(str(row[k]) for k in ("date", "commit") if row.get(k))
        lines.append(
            f"| {name} | {budget} | {row.get('n_seeds', 1 if row.get('env_steps') else 0)} "
            f"| {steps} | {_over_seeds(row) if row.get('env_steps') else '–'} | {each or '–'} "
            f"| {_fmt(row.get('eval_tics'), row.get('eval_tics_std'), 0)} "
            f"| {_fmt(row['random_mean'], row['random_std'])} | {when} "
            f"| {SCENARIOS[name].published} | {row.get('load', '–')} | {stamp or '–'} | {curve} |"
        )
    return "\n".join(lines)


def render_short_table(results: dict[str, dict]) -> str:
    """The README's table: scenario, budget on 2 cores, evaluation over seeds, published."""
    lines = [
        "| scenario | budget (2 cores) | evaluation: IQM [95% CI] (seeds) | random | published |",
        "|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        row = results.get(name)
        if row is None or not row.get("env_steps"):
            continue
        lines.append(
            f"| [{name}](docs/results/{name}_curve.png) | {row['minutes']:g} min, "
            f"{row['workers']} workers | {_over_seeds(row)} "
            f"| {_number(row['random_mean'], row['random_mean'])} "
            f"| {SCENARIOS[name].published} |"
        )
    return "\n".join(lines)


def load_results(out: Path) -> dict[str, dict]:
    """The rows measured so far (scenarios.json in ``out``), by scenario."""
    path = out / "scenarios.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_results(results: dict[str, dict], out: Path = RESULTS) -> None:
    """scenarios.json (the data), scenarios.md, and (for docs/results) the README's table."""
    from a3c_exp.files import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "scenarios.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
    table = render_table(results)
    header = (
        "# Scenario benchmark\n\n"
        "Written by `scripts/bench_scenarios.py`. Rewards in the game's own units (reward_scale "
        "undone); each seed's final checkpoint evaluated over 100 episodes, sampling from its "
        "policy; IQM and the 95% percentile-bootstrap interval over the seeds' evaluation means "
        "(a row of one seed gives its mean ± std over the episodes); time to target: the median "
        "over the seeds that reached it of the training seconds until the last-100 mean first "
        "reached the target. Episode length in tics (env steps x frame skip). The load average "
        "is the machine's (shared; the run's own two workers and their engines count for about "
        "2): mean [min–max] of the 1-minute load sampled every 15 s during training.\n\n"
    )
    atomic_write_text(out / "scenarios.md", header + table + "\n")
    if out != RESULTS:
        return
    text = README.read_text()
    start, end = TABLE_MARKERS
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        atomic_write_text(README, f"{before}{start}\n{render_short_table(results)}\n{end}{after}")


def _commit() -> str:
    """The code's commit (short), with ``+`` when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""
    return head + ("+" if dirty else "")


def seeds_row(name: str, row: dict, seeds: list[dict], commit: str) -> dict:
    """The scenario's row from its seeds: each seed's figures, then their statistics."""
    from a3c_exp.reporting.seed_stats import SeedStats

    means = [s["eval_mean"] for s in seeds]
    stats = SeedStats.of(means)
    times = [s["time_to_target_s"] for s in seeds if s.get("time_to_target_s") is not None]
    samples = [x for s in seeds for x in s["load_samples"]]
    return {
        **row,
        "seeds": seeds,
        "n_seeds": len(seeds),
        "env_steps": int(statistics.fmean(s["env_steps"] for s in seeds)),
        "eval_mean": stats.mean,
        "eval_iqm": stats.iqm,
        "eval_ci95_low": stats.ci_low,
        "eval_ci95_high": stats.ci_high,
        "eval_std": float(statistics.pstdev(means)) if len(means) > 1 else seeds[0]["eval_std"],
        "eval_tics": statistics.fmean(s["eval_tics"] for s in seeds)
        if all(s.get("eval_tics") is not None for s in seeds)
        else None,
        "eval_tics_std": statistics.fmean(s["eval_tics_std"] for s in seeds)
        if all(s.get("eval_tics_std") is not None for s in seeds)
        else None,
        "final_train_mean": statistics.fmean(
            s["final_train_mean"] for s in seeds if s.get("final_train_mean") is not None
        )
        if any(s.get("final_train_mean") is not None for s in seeds)
        else None,
        "time_to_target_s": statistics.median(times) if times else None,
        "reached_target": len(times),
        "load": f"{statistics.fmean(samples):.1f} [{min(samples):.1f}–{max(samples):.1f}]",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": commit,
    }


def bench(name: str, args: argparse.Namespace) -> None:
    """Random play, then each seed trained and evaluated (unless --random-only); the row is
    written after each seed."""
    scenario = SCENARIOS[name]
    cfg = _compose(scenario.preset, args.overrides)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base_dir = REPO / "outputs" / "bench_scenarios"
    base_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{name}] random policy over {args.episodes} episodes", flush=True)
    rand_rewards, _ = random_policy(cfg.env, args.episodes, 12345, base_dir / ".vizdoom")
    random_mean, random_std = _mean_std(rand_rewards)
    row: dict = {
        "preset": scenario.preset,
        "minutes": 0,
        "workers": args.workers,
        "random_mean": random_mean,
        "random_std": random_std,
        "overrides": args.overrides,
    }
    if args.random_only:
        results = load_results(args.out)
        if results.get(name, {}).get("env_steps"):
            row = {**results[name], "random_mean": random_mean, "random_std": random_std}
        results[name] = row
        write_results(results, args.out)
        return
    minutes = args.minutes or scenario.minutes
    scale = cfg.env.reward_scale
    row["minutes"] = minutes
    seeds, runs = [], []
    for seed in args.seed_list:
        run_dir = base_dir / f"{name}-s{seed}-{stamp}"
        overrides = [*args.overrides, f"seed={seed}"]
        load, rows = train(
            f"{name} seed {seed}", scenario, minutes, args.workers, overrides, run_dir
        )
        report = evaluate(f"{name} seed {seed}", run_dir, args.episodes)
        tics = [e["length"] * cfg.env.frame_skip for e in report["per_episode"]]
        tics_mean, tics_std = _mean_std(tics)
        doom = cfg.env.kind == "vizdoom"
        seeds.append(
            {
                "seed": seed,
                "env_steps": int(float(rows[-1]["global_step"])),
                "eval_mean": report["mean_reward"] / scale,
                "eval_std": report["std_reward"] / scale,
                "eval_tics": tics_mean if doom else None,
                "eval_tics_std": tics_std if doom else None,
                "final_train_mean": float(rows[-1][REWARD]) / scale if rows[-1][REWARD] else None,
                "time_to_target_s": time_to_target(rows, scale, scenario.target),
                "load_samples": load,
                "run_dir": str(run_dir.relative_to(REPO)),
            }
        )
        runs.append(rows)
        row = seeds_row(name, row, seeds, args.commit)
        args.out.mkdir(parents=True, exist_ok=True)
        plot_curve(name, runs, scale, row, args.out / f"{name}_curve.png")
        results = load_results(args.out)  # read last: another run may have added its row
        results[name] = row
        write_results(results, args.out)
        print(f"[{name}] seed {seed}: eval {_fmt(seeds[-1]['eval_mean'], seeds[-1]['eval_std'])}")
    print(f"[{name}] {_over_seeds(row)}; random {_fmt(random_mean, random_std)}", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options, the overrides after ``--`` and the seeds to run; a ``seed=`` override is
    refused (each seed's run sets ``seed=<k>`` last, which would silently win over it)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Arguments after -- are passed to a3c_exp.train (and to the random baseline's env)",
    )
    parser.add_argument("--scenario", nargs="+", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds per scenario")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="the seeds are K..K+N-1 (default 0)"
    )
    parser.add_argument("--minutes", type=float, help="wall-time budget (default: per scenario)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--random-only", action="store_true", help="only the random baseline")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args, overrides = parser.parse_known_args(argv)
    args.overrides = [o for o in overrides if o != "--"]
    given = [o for o in args.overrides if o.split("=", 1)[0].lstrip("+~") == "seed"]
    if given:  # one line, the project's way, not argparse's usage block
        print(
            f"error: {given[0]}: the seeds come from --seeds and --first-seed, not from seed=",
            file=sys.stderr,
        )
        raise SystemExit(2)
    args.seed_list = list(range(args.first_seed, args.first_seed + args.seeds))
    return args


def main() -> None:
    """Benchmark the scenarios named by --scenario, one after another."""
    args = parse_args(sys.argv[1:])
    # taken before the first row is written: the rows and curves this run writes are not code
    args.commit = _commit()
    for name in args.scenario:
        bench(name, args)


if __name__ == "__main__":
    main()
