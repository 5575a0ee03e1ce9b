"""Scenario benchmark: train each preset for its wall-time budget, evaluate it, table the result.

For each scenario: trains ``env=<preset>`` on this machine for the budget (wall minutes, default
2 workers), evaluates the final checkpoint over 100 episodes with ``python -m a3c_exp.evaluate``
(sampling from the policy), plays 100 episodes with uniformly random actions, and samples the
machine's load average during training (the machine may be shared). Rewards are reported in the
game's own units (the preset's ``reward_scale`` undone). The row is added to (or replaces its
row in) ``docs/results/scenarios.json``, from which ``docs/results/scenarios.md`` and the table
in the README are rendered; the learning curve goes to ``docs/results/<scenario>_curve.png``.
So the table fills over several runs, one scenario at a time.

Usage: python scripts/bench_scenarios.py --scenario defend_the_center [take_cover ...]
       [--minutes 30] [--workers 2] [--random-only] [-- key=value ...]
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
    """A preset, its wall-time budget and the published result to compare with."""

    preset: str
    minutes: float
    published: str


SCENARIOS = {
    "basic": Scenario("doom", 5, "75–77 (Sample Factory APPO)"),
    "defend_the_center": Scenario(
        "doom_defend_the_center", 30, "24–25 at ~4B frames; 16.2 ± 1.5 at ~10M frames (APPO)"
    ),
    "defend_the_line": Scenario(
        "doom_defend_the_line", 30, "34.7–43.5; 20.7 ± 4.4 with a smaller model (APPO)"
    ),
    "health_gathering": Scenario(
        "doom_health_gathering", 20, "full survival: 2100 tics, reward 2100 (APPO)"
    ),
    "health_gathering_supreme": Scenario(
        "doom_health_gathering_supreme", 30, "survives ~890–1130 tics at 4M frames (APPO)"
    ),
    "take_cover": Scenario("doom_take_cover", 30, '750 = "solved"; 1092 ± 556 (World Models)'),
    "deadly_corridor": Scenario(
        "doom_deadly_corridor", 30, "1,670–1,920 at billions of frames (APPO)"
    ),
    "my_way_home": Scenario("doom_my_way_home", 30, "0.98 at billions of frames (APPO)"),
    "predict_position": Scenario("doom_predict_position", 30, "–"),
    "rocket_basic": Scenario("doom_rocket_basic", 30, "–"),
    "atari_pong": Scenario("atari_pong", 30, "+21 max; A3C paper: 11.4 (FF, 1 day) to 20.7"),
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


def plot_curve(name: str, rows: list[dict], scale: float, row: dict, path: Path) -> None:
    """Last-100 mean (game units) against env steps, with the random baseline and evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(float(r["global_step"]), float(r[REWARD]) / scale) for r in rows if r[REWARD]]
    fig, ax = plt.subplots(figsize=(7, 4))
    if points:
        ax.plot(*zip(*points, strict=True), label="training: mean of the last 100 episodes")
    ax.axhline(row["random_mean"], color="grey", ls="--", label="random policy (100 episodes)")
    if row.get("eval_mean") is not None:
        ax.axhline(row["eval_mean"], color="green", ls=":", label="final evaluation (100 ep.)")
    ax.set_xlabel("env steps (all workers)")
    ax.set_ylabel("episode reward (game units)")
    ax.set_title(f"{name}: {row['minutes']:g} min, {row['workers']} workers, load {row['load']}")
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


def render_table(results: dict[str, dict]) -> str:
    """The markdown table of every measured scenario, in SCENARIOS order."""
    lines = [
        "| scenario | budget | env steps | eval (100 ep.) | eval length (tics) | random (100 ep.) "
        "| training: last 100 at the end | published | load avg (1 min) | curve |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        row = results.get(name)
        if row is None:
            continue
        budget = f"{row['minutes']:g} min, {row['workers']} workers" if row["minutes"] else "–"
        steps = f"{row['env_steps']:,}" if row.get("env_steps") else "–"
        curve = f"[png]({name}_curve.png)" if row.get("env_steps") else "not trained yet"
        final = f"{row['final_train_mean']:,.1f}" if row.get("final_train_mean") else "–"
        lines.append(
            f"| {name} | {budget} | {steps} | {_fmt(row.get('eval_mean'), row.get('eval_std'))} "
            f"| {_fmt(row.get('eval_tics'), row.get('eval_tics_std'), 0)} "
            f"| {_fmt(row['random_mean'], row['random_std'])} | {final} "
            f"| {SCENARIOS[name].published} "
            f"| {row.get('load', '–')} | {curve} |"
        )
    return "\n".join(lines)


def load_results(out: Path) -> dict[str, dict]:
    """The rows measured so far (scenarios.json in ``out``), by scenario."""
    path = out / "scenarios.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_results(results: dict[str, dict], out: Path = RESULTS) -> None:
    """scenarios.json (the data), scenarios.md, and (for docs/results) the README's table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "scenarios.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    table = render_table(results)
    header = (
        "# Scenario benchmark\n\n"
        "Written by `scripts/bench_scenarios.py`. Rewards in the game's own units (reward_scale "
        "undone); evaluation samples from the final checkpoint's policy; episode length in tics "
        "(env steps x frame skip). The load average is the machine's (shared; the run's own two "
        "workers and their engines count for about 2): mean [min–max] of the 1-minute load "
        "sampled every 15 s during training.\n\n"
    )
    (out / "scenarios.md").write_text(header + table + "\n")
    if out != RESULTS:
        return
    text = README.read_text()
    start, end = TABLE_MARKERS
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        linked = table.replace("](", "](docs/results/")
        README.write_text(f"{before}{start}\n{linked}\n{end}{after}")


def bench(name: str, args: argparse.Namespace) -> None:
    """Train (unless --random-only), evaluate, measure random play; update the results."""
    scenario = SCENARIOS[name]
    cfg = _compose(scenario.preset, args.overrides)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = REPO / "outputs" / "bench_scenarios" / f"{name}-{stamp}"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"[{name}] random policy over {args.episodes} episodes", flush=True)
    rand_rewards, _ = random_policy(cfg.env, args.episodes, 12345, run_dir.parent / ".vizdoom")
    random_mean, random_std = _mean_std(rand_rewards)
    row: dict = {
        "preset": scenario.preset,
        "minutes": 0,
        "workers": args.workers,
        "random_mean": random_mean,
        "random_std": random_std,
        "overrides": args.overrides,
    }
    if not args.random_only:
        minutes = args.minutes or scenario.minutes
        load, rows = train(name, scenario, minutes, args.workers, args.overrides, run_dir)
        report = evaluate(name, run_dir, args.episodes)
        scale = cfg.env.reward_scale
        tics = [e["length"] * cfg.env.frame_skip for e in report["per_episode"]]
        tics_mean, tics_std = _mean_std(tics)
        row.update(
            minutes=minutes,
            env_steps=int(float(rows[-1]["global_step"])),
            eval_mean=report["mean_reward"] / scale,
            eval_std=report["std_reward"] / scale,
            eval_tics=tics_mean if cfg.env.kind == "vizdoom" else None,
            eval_tics_std=tics_std if cfg.env.kind == "vizdoom" else None,
            final_train_mean=float(rows[-1][REWARD]) / scale if rows[-1][REWARD] else None,
            load=f"{statistics.fmean(load):.1f} [{min(load):.1f}–{max(load):.1f}]",
            run_dir=str(run_dir.relative_to(REPO)),
            date=time.strftime("%Y-%m-%d %H:%M"),
        )
        args.out.mkdir(parents=True, exist_ok=True)
        plot_curve(name, rows, scale, row, args.out / f"{name}_curve.png")
    results = load_results(args.out)  # read last: another run may have added its row meanwhile
    if args.random_only and results.get(name, {}).get("env_steps"):
        row = {**results[name], "random_mean": random_mean, "random_std": random_std}
    results[name] = row
    write_results(results, args.out)
    summary = _fmt(row.get("eval_mean"), row.get("eval_std"))
    print(f"[{name}] eval {summary}; random {_fmt(random_mean, random_std)}", flush=True)


def main() -> None:
    """Benchmark the scenarios named by --scenario, one after another."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Arguments after -- are passed to a3c_exp.train (and to the random baseline's env)",
    )
    parser.add_argument("--scenario", nargs="+", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--minutes", type=float, help="wall-time budget (default: per scenario)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--random-only", action="store_true", help="only the random baseline")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args, overrides = parser.parse_known_args()
    args.overrides = [o for o in overrides if o != "--"]
    for name in args.scenario:
        bench(name, args)


if __name__ == "__main__":
    main()
