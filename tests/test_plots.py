"""Learning curves: last-100 means once 100 episodes exist, partial runs marked, a legend that
never squeezes the panels, step ticks that never repeat."""

import csv

import pytest

from a3c_exp.reporting.plots import (
    plot_learning_curves,
    read_curve,
    read_partial_curve,
    step_formatter,
)


def test_curve_starts_at_the_first_full_window(tmp_path):
    rows = [
        {
            "global_step": 100,
            "Perf/Time": 1.0,
            "Perf/Episodes": 3,
            "Perf/Mean Reward (last 100)": 0.9,
        },
        {
            "global_step": 900,
            "Perf/Time": 9.0,
            "Perf/Episodes": 99,
            "Perf/Mean Reward (last 100)": -1,
        },
        {
            "global_step": 1000,
            "Perf/Time": 10.0,
            "Perf/Episodes": 100,
            "Perf/Mean Reward (last 100)": -2,
        },
        {
            "global_step": 2000,
            "Perf/Time": 20.0,
            "Perf/Episodes": 180,
            "Perf/Mean Reward (last 100)": 0.5,
        },
    ]
    with open(tmp_path / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    steps, seconds, rewards = read_curve(tmp_path)
    assert steps == [1000.0, 2000.0] and seconds == [10.0, 20.0] and rewards == [-2.0, 0.5]
    assert plot_learning_curves([tmp_path], tmp_path / "curve.png").stat().st_size > 0


def _write_metrics(run_dir, episodes, start_step=3500, end_step=8000):
    """A metrics.csv whose rows end at ``end_step`` with ``episodes`` episodes in all."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(
            handle, ["global_step", "Perf/Time", "Perf/Episodes", "Perf/Mean Reward (last 100)"]
        )
        writer.writeheader()
        for i in range(1, 11):
            writer.writerow(
                {
                    "global_step": start_step + i * (end_step - start_step) // 10,
                    "Perf/Time": i * 1.5,
                    "Perf/Episodes": i * episodes // 10,
                    "Perf/Mean Reward (last 100)": 20 + i,
                }
            )
    return run_dir


def test_a_run_without_a_full_window_is_plotted_as_partial(tmp_path):
    short = _write_metrics(tmp_path / "short", episodes=60)
    full = _write_metrics(tmp_path / "full", episodes=150)
    assert read_curve(short) == ([], [], [])
    assert len(read_partial_curve(short)[0]) == 10
    assert read_partial_curve(full) == ([], [], [])  # a full run is drawn from its full windows


@pytest.mark.parametrize("jobs", [2, 8, 30])
def test_the_legend_sits_below_the_panels_whatever_the_number_of_runs(tmp_path, jobs):
    from matplotlib.figure import Figure

    saved = {}
    original = Figure.savefig

    def keep(fig, *args, **kwargs):  # the figure as saved, with its renderer (gone once closed)
        result = original(fig, *args, **kwargs)
        saved.update(fig=fig, renderer=fig.canvas.get_renderer())
        return result

    runs = [_write_metrics(tmp_path / str(i), episodes=150 if i else 60) for i in range(jobs)]
    labels = [f"ent={0.001 * (i + 1):.3g} λ=0.938 lr=2.08e-3 n=30" for i in range(jobs)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", keep)
        plot_learning_curves(runs, tmp_path / "curves.png", labels, "env=cartpole", ["a note"])
    fig, renderer = saved["fig"], saved["renderer"]
    legend = fig.legends[0].get_window_extent(renderer)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(texts) == jobs and texts[0].endswith("(<100 ep.)")  # no duplicates, partial marked
    assert "a note" in fig.legends[0].get_title().get_text()
    assert legend.x0 >= 0 and legend.x1 <= fig.bbox.width
    for axis in fig.axes:
        box = axis.get_tightbbox(renderer)
        assert not box.overlaps(legend), "legend covers a panel"
        assert axis.get_position().width > 0.3  # each panel keeps a third of the width or more
        assert axis.get_window_extent(renderer).height / fig.dpi > 2.0  # and 2 inches of height


@pytest.mark.parametrize(
    ("low", "high"), [(3600, 8100), (0, 3000), (950_000, 1_020_000), (2e6, 1.2e7)]
)
def test_step_tick_labels_never_repeat(low, high):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots()
    axis.plot([low, high], [0, 1])
    axis.set_xlim(low, high)
    axis.xaxis.set_major_formatter(step_formatter())
    fig.canvas.draw()
    labels = [t.get_text() for t in axis.get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert len(labels) > 2 and len(set(labels)) == len(labels), labels
