"""Learning curves plot last-100 means only once 100 episodes exist."""

import csv

from a3c_exp.reporting.plots import plot_learning_curves, read_curve


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
