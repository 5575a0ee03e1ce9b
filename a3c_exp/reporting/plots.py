"""Learning-curve plots from ``metrics.csv`` files (no W&B needed)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

REWARD_KEY = "Perf/Mean Reward (last 100)"
FULL_WINDOW = 100  # episodes behind each plotted mean


def read_curve(run_dir: Path) -> tuple[list[float], list[float], list[float]]:
    """(env steps, wall seconds, last-100 mean reward) rows of a run over full windows.

    Rows from before the 100th episode are left out: a mean over the first few episodes is
    noise (one lucky early episode plotted as 0.76 on Doom basic), not a last-100 mean.
    """
    steps, seconds, rewards = [], [], []
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return steps, seconds, rewards
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get(REWARD_KEY) and float(row.get("Perf/Episodes") or 0) >= FULL_WINDOW:
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
    import matplotlib.ticker

    labels = list(labels) if labels else [Path(d).name for d in run_dirs]
    fig, (by_steps, by_time) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for run_dir, label in zip(run_dirs, labels, strict=True):
        steps, seconds, rewards = read_curve(Path(run_dir))
        by_steps.plot(steps, rewards, label=label)
        by_time.plot([s / 60 for s in seconds], rewards, label=label)
    by_steps.set_xlabel("env steps")
    by_steps.xaxis.set_major_formatter(
        matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:,.0f}k" if x else "0")
    )
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
