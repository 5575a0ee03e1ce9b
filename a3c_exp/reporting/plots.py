"""Learning-curve plots from ``metrics.csv`` files (no W&B needed)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

REWARD_KEY = "Perf/Mean Reward (last 100)"


def read_curve(run_dir: Path) -> tuple[list[float], list[float], list[float]]:
    """(env steps, wall seconds, last-100 mean reward) rows of a run that have a reward."""
    steps, seconds, rewards = [], [], []
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return steps, seconds, rewards
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get(REWARD_KEY):
                steps.append(float(row["global_step"]))
                seconds.append(float(row["Perf/Time"]))
                rewards.append(float(row[REWARD_KEY]))
    return steps, seconds, rewards


def plot_learning_curves(
    run_dirs: Sequence[Path], out_path: Path, labels: Sequence[str] | None = None
) -> Path:
    """Mean reward (last 100 episodes) against env steps and against wall time, one line a run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels) if labels else [Path(d).name for d in run_dirs]
    fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for run_dir, label in zip(run_dirs, labels, strict=True):
        steps, seconds, rewards = read_curve(Path(run_dir))
        by_steps.plot(steps, rewards, label=label)
        by_time.plot([s / 60 for s in seconds], rewards, label=label)
    by_steps.set_xlabel("env steps")
    by_time.set_xlabel("wall time (minutes)")
    for axis in (by_steps, by_time):
        axis.set_ylabel("mean reward, last 100 episodes")
        axis.grid(alpha=0.3)
    if len(run_dirs) > 1:
        by_steps.legend(fontsize="small")
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
