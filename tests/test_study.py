"""The Optuna study of a sweep: kept in SQLite, reopened elsewhere, drawn as Optuna's views."""

import subprocess
import sys

import pytest

from tests.helpers import cli_env

optuna = pytest.importorskip("optuna")


def _objective(trial):
    lr = trial.suggest_float("optim.lr", 1e-4, 3e-3, log=True)
    rollout = trial.suggest_categorical("rollout_len", [5, 10, 20, 30])
    if rollout == 5:
        raise ValueError("a failed trial")
    return 100 * lr + rollout / 30


def _study(storage=None):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(
        study_name="a3c", storage=storage, sampler=sampler, direction="maximize"
    )
    study.optimize(_objective, n_trials=8, catch=(ValueError,))
    return study


def test_sqlite_study_reopens_with_a_plain_url_in_another_process(tmp_path):
    from a3c_exp.study import load_sweep_study, study_url

    path = tmp_path / "optuna.db"
    study = _study(study_url(tmp_path))
    states = [t.state.name for t in study.trials]
    assert "FAIL" in states and "COMPLETE" in states
    code = (
        "import optuna; "
        f"s = optuna.load_study(study_name='a3c', storage='sqlite:///{path}'); "
        "print(' '.join(t.state.name for t in s.trials))"
    )
    reopened = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=cli_env()
    )
    assert reopened.returncode == 0, reopened.stderr[-2000:]
    assert reopened.stdout.split() == states
    assert [t.state.name for t in load_sweep_study(path.parent).trials] == states
    assert load_sweep_study(tmp_path / "grid") is None  # no optuna.db: not an Optuna sweep


def test_study_plots_are_written_and_leave_the_plot_style_alone(tmp_path):
    import matplotlib

    from a3c_exp.reporting.study_plots import param_importances, plot_study

    study = _study()
    keys = ("axes.facecolor", "axes.grid", "axes.prop_cycle", "axes.edgecolor")
    style = {key: matplotlib.rcParams[key] for key in keys}
    written = plot_study(study, tmp_path, "final_mean_reward")
    assert [p.name for p in written] == [
        "optuna_history.png",
        "optuna_importances.png",
        "optuna_slice.png",
    ]
    assert all(p.stat().st_size > 5_000 for p in written)
    # optuna's views switch to ggplot globally; the sweep's other plots must not inherit it
    assert {key: matplotlib.rcParams[key] for key in keys} == style
    importances = param_importances(study)
    assert set(importances) == {"optim.lr", "rollout_len"}
    assert sum(importances.values()) == pytest.approx(1.0)


def test_study_without_a_completed_trial_draws_nothing(tmp_path):
    from a3c_exp.reporting.study_plots import plot_study

    study = optuna.create_study()
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    assert plot_study(study, tmp_path) == []
