"""Learning-curve plots from ``metrics.csv`` files (no W&B needed).

One figure, two panels (reward against env steps and against wall time), sized for any number
of runs: the legend sits below the panels in as many columns as fit, so 30 runs make the figure
taller, never the panels narrower. A run too short for a full 100-episode window is drawn dashed
and faded rather than left out, and a note under the legend says so.
"""

from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REWARD_KEY = "Perf/Mean Reward (last 100)"
FULL_WINDOW = 100  # episodes behind each plotted mean
FEW_POINTS = 5  # curves this short get markers
FIG_WIDTH = 11.0  # inches
PANEL_HEIGHT = 3.6  # inches, whatever the number of runs
PARTIAL_NOTE = (
    f"dashed, faded: run ended before {FULL_WINDOW} episodes; its mean is over the episodes it had"
)

Curve = tuple[list[float], list[float], list[float]]


def _read_rows(run_dir: Path) -> list[dict[str, float]]:
    """Rows of ``metrics.csv`` that carry a mean reward, as numbers."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [
            {
                "step": float(row["global_step"]),
                "time": float(row["Perf/Time"]),
                "reward": float(row[REWARD_KEY]),
                "episodes": float(row.get("Perf/Episodes") or 0),
            }
            for row in csv.DictReader(handle)
            if row.get(REWARD_KEY)
        ]


def _as_curve(rows: list[dict[str, float]]) -> Curve:
    return [r["step"] for r in rows], [r["time"] for r in rows], [r["reward"] for r in rows]


def read_curve(run_dir: Path) -> Curve:
    """(env steps, wall seconds, last-100 mean reward) rows of a run over full windows.

    Rows from before the 100th episode are left out: a mean over the first few episodes is
    noise (one lucky early episode plotted as 0.76 on Doom basic), not a last-100 mean.
    """
    return _as_curve([r for r in _read_rows(run_dir) if r["episodes"] >= FULL_WINDOW])


def read_partial_curve(run_dir: Path) -> Curve:
    """Every row of a run that never reached a full window (empty if it did, or has no rows).

    Such a run (a short sweep job) would otherwise vanish from the plot; its means, over fewer
    than 100 episodes, are plotted as partial.
    """
    rows = _read_rows(run_dir)
    if any(r["episodes"] >= FULL_WINDOW for r in rows):
        return [], [], []
    return _as_curve(rows)


def step_formatter() -> Any:
    """Env-step tick labels (``4k``, ``4.5k``, ``1.25M``) whose precision follows the ticks.

    A fixed ``{x/1000:.0f}k`` printed 4500 and 4000 both as ``4k``; an engineering formatter
    without fixed places keeps every digit a tick needs.
    """
    import matplotlib.ticker

    return matplotlib.ticker.EngFormatter(sep="")


def _colours(count: int) -> list[Any]:
    """Distinct colours for up to 20 runs; beyond that a gradient in the given (rank) order."""
    import matplotlib

    if count <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(count)]
    if count <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(count)]
    return [matplotlib.colormaps["viridis"](i / (count - 1)) for i in range(count)]


def _legend_below(fig: Any, axis: Any, notes: Sequence[str]) -> None:
    """One legend for both panels under them, notes as its title; the figure grows to fit it.

    Columns start at as many as could fit and drop until the drawn legend is narrower than the
    figure; then the figure is made tall enough for panels of ``PANEL_HEIGHT`` plus the legend.
    """
    handles, labels = axis.get_legend_handles_labels()
    longest = max(len(label) for label in labels)
    columns = max(1, min(len(labels), math.floor(FIG_WIDTH / (longest * 0.05 + 0.6))))
    while True:
        legend = fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=columns,
            fontsize="small",
            frameon=False,
            title="\n".join(notes) or None,
            title_fontsize="small",
        )
        fig.canvas.draw()
        box = legend.get_window_extent()
        if box.width <= fig.bbox.width - 10 or columns == 1:
            break
        legend.remove()
        columns -= 1
    fig.set_size_inches(FIG_WIDTH, fig.get_figheight() + box.height / fig.dpi)


def plot_learning_curves(
    run_dirs: Sequence[Path],
    out_path: Path,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Mean reward (last 100 episodes) against env steps and against wall time, one line a run.

    ``title`` says what the runs share, ``labels`` what tells them apart; ``notes`` are lines
    printed under the legend (e.g. which sweep jobs failed and have no curve).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [str(x) for x in labels] if labels else [Path(d).name for d in run_dirs]
    curves, partial = [], False
    for run_dir, label in zip(run_dirs, labels, strict=True):
        curve, dashed = read_curve(Path(run_dir)), False
        if not curve[0]:
            curve, dashed = read_partial_curve(Path(run_dir)), True
        if not curve[0]:
            notes = [*notes, f"no curve: {label or Path(run_dir).name} (no metrics reported)"]
            continue
        partial = partial or dashed
        curves.append((curve, f"{label} (<{FULL_WINDOW} ep.)" if dashed else label, dashed))
    notes = [PARTIAL_NOTE, *notes] if partial else list(notes)
    notes = [line for note in notes for line in textwrap.wrap(note, 150)]

    with_legend = len(curves) > 1 or partial
    fig, (by_steps, by_time) = plt.subplots(
        1, 2, figsize=(FIG_WIDTH, PANEL_HEIGHT), layout="constrained"
    )
    minutes = max((max(c[1]) for c, _, _ in curves), default=0) > 120
    for (curve, label, dashed), colour in zip(curves, _colours(len(curves)), strict=True):
        steps, seconds, rewards = curve
        style = {"color": colour, "label": label, "linestyle": "--" if dashed else "-"}
        style["alpha"] = 0.5 if dashed else 1.0
        if len(steps) <= FEW_POINTS:  # a line through one or two points is not seen
            style.update(marker="o", markersize=4)
        by_steps.plot(steps, rewards, **style)
        by_time.plot([s / 60 if minutes else s for s in seconds], rewards, **style)
    by_steps.set_xlabel("env steps")
    by_steps.xaxis.set_major_formatter(step_formatter())
    by_time.set_xlabel("wall time (minutes)" if minutes else "wall time (s)")
    for axis in (by_steps, by_time):
        axis.set_ylabel(f"mean reward, last {FULL_WINDOW} episodes")
        axis.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize="medium")
    if with_legend:
        _legend_below(fig, by_steps, notes)
    elif notes:
        fig.supxlabel("\n".join(notes), fontsize="small", color="0.3")
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def mean_curve(run_dirs: Sequence[Path], points: int = 60) -> tuple[Any, Any, Any, Any] | None:
    """(steps, mean, low, high) over the runs' curves, aligned on env steps; None if none.

    Each run's last-100 mean is interpolated onto one grid of env steps, from the latest first
    report to the earliest last one (the steps every run has covered); the band is the 95%
    bootstrap interval of the mean at each step (low = high = mean with a single run).
    """
    import numpy as np

    from a3c_exp.reporting.seed_stats import mean_interval

    curves = []
    for run_dir in run_dirs:
        steps, _, rewards = read_curve(Path(run_dir))
        if not steps:
            steps, _, rewards = read_partial_curve(Path(run_dir))
        if steps:
            curves.append((np.asarray(steps), np.asarray(rewards)))
    if not curves:
        return None
    start, end = max(s[0] for s, _ in curves), min(s[-1] for s, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.asarray([end])
    values = np.stack([np.interp(grid, steps, rewards) for steps, rewards in curves])
    mean = values.mean(axis=0)
    interval = mean_interval(values)
    low, high = interval if interval is not None else (mean, mean)
    return grid, mean, low, high


def plot_config_bands(
    groups: Sequence[tuple[str, Sequence[Path]]],
    out_path: Path,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """One line per config (the mean over its seeds) with its 95% interval as a band.

    ``groups`` are (label, run directories of the config's seeds); the label should say how
    many seeds it has. The x axis is env steps: seeds of one config run at different speeds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(FIG_WIDTH, PANEL_HEIGHT + 0.6), layout="constrained")
    drawn = 0
    for (label, run_dirs), colour in zip(groups, _colours(len(groups)), strict=True):
        curve = mean_curve(run_dirs)
        if curve is None:
            notes = [*notes, f"no curve: {label} (no metrics reported)"]
            continue
        steps, mean, low, high = curve
        marker = {"marker": "o", "markersize": 4} if len(steps) <= FEW_POINTS else {}
        axis.plot(steps, mean, color=colour, label=label, **marker)
        axis.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
        drawn += 1
    axis.set_xlabel("env steps")
    axis.xaxis.set_major_formatter(step_formatter())
    axis.set_ylabel(f"mean reward, last {FULL_WINDOW} episodes")
    axis.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize="medium")
    band = "line: mean over a config's seeds; band: 95% bootstrap interval of that mean"
    notes = [band, *notes]
    if drawn:
        _legend_below(fig, axis, [line for note in notes for line in textwrap.wrap(note, 150)])
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
