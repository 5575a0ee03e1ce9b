"""--multirun sweeps: a job dir and W&B run per job, one group, a summary, failures listed."""

import csv
import json
import subprocess
import sys

import pytest

from a3c_exp.reporting.wandb_file import read_wandb_run
from a3c_exp.sweep import read_job_records
from tests.helpers import cli_env

pytestmark = pytest.mark.slow

TINY = [
    "env=cartpole",
    "total_steps=1500",
    "log_every=0.5",
    "video_every=0",
    "checkpoint_every=0",
    "target_reward=null",
]


def _multirun(sweep_dir, *overrides, timeout=240):
    cmd = [
        sys.executable,
        "-m",
        "a3c_exp.train",
        "--multirun",
        f"hydra.sweep.dir={sweep_dir}",
        *TINY,
        *overrides,
    ]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=sweep_dir.parent
    )


def test_grid_sweep_runs_every_job_with_its_own_wandb_run_in_one_group(tmp_path):
    sweep_dir = tmp_path / "grid"
    result = _multirun(sweep_dir, "workers=1,2", "loss.entropy_coef=0.01,0.001", "logger=wandb")
    assert result.returncode == 0, result.stderr[-3000:]
    job_dirs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(job_dirs) == 4
    runs = [read_wandb_run(job / "wandb") for job in job_dirs]
    assert len({run.run_id for run in runs}) == 4
    assert len({run.group for run in runs}) == 1 and runs[0].group.startswith("sweep-")
    assert all(run.exit_code == 0 for run in runs)
    assert {(r.config["workers"], r.config["loss"]["entropy_coef"]) for r in runs} == {
        (1, 0.01),
        (1, 0.001),
        (2, 0.01),
        (2, 0.001),
    }
    with open(sweep_dir / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    objectives = [float(r["objective"]) for r in rows]
    assert objectives == sorted(objectives, reverse=True)
    for record in read_job_records(sweep_dir):  # each row is the job's own final metric
        run = read_wandb_run(f"{record['job_dir']}/wandb")
        assert record["objective"] == pytest.approx(run.summary["final_mean_reward"])
    assert (sweep_dir / "summary.md").is_file() and (sweep_dir / "summary_curves.png").is_file()


def test_a_failing_job_does_not_stop_the_others_and_is_listed(tmp_path):
    sweep_dir = tmp_path / "fail"
    result = _multirun(sweep_dir, "workers=1", "loss.gamma=0.99,1.5,0.9", "logger=none")
    assert result.returncode != 0  # Hydra reports the failed job at the end
    records = read_job_records(sweep_dir)
    assert [r["status"] for r in records] == ["completed", "completed", "failed"]
    failed = records[-1]
    assert "loss.gamma=1.5" in failed["overrides"]
    assert failed["error"] == "loss.gamma=1.5: must be in (0, 1]"
    summary = (sweep_dir / "summary.md").read_text()
    assert "loss.gamma=1.5" in summary and "must be in (0, 1]" in summary


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory):
    """A 4-trial Optuna study, logged to W&B, where trials drawing loss.gamma=1.5 fail."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep_dir = tmp_path_factory.mktemp("optuna") / "sweep"
    result = _multirun(
        sweep_dir,
        "hydra/sweeper=a3c_optuna",
        "hydra.sweeper.n_trials=4",
        "loss.gamma=choice(1.5,0.99)",  # sampler seed 0: trial 2 draws 1.5, the others 0.99
        "workers=1",
        "logger=wandb",
    )
    return sweep_dir, result


def test_optuna_study_goes_on_after_a_failed_trial_and_lists_it(optuna_sweep):
    sweep_dir, result = optuna_sweep
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_job_records(sweep_dir)
    assert len(records) == 4
    failed = [r for r in records if r["status"] == "failed"]
    completed = [r for r in records if r["status"] == "completed"]
    assert [r["job"] for r in failed] == [2] and len(completed) == 3  # trial 3 ran after it
    assert all(r["error"] == "loss.gamma=1.5: must be in (0, 1]" for r in failed)
    assert all("loss.gamma=0.99" in r["overrides"] for r in completed)
    best = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_params" in best and "best_value" in best
    summary = (sweep_dir / "summary.md").read_text()
    assert summary.count("| failed |") == len(failed) and "must be in (0, 1]" in summary


def test_optuna_study_is_stored_and_reopened_by_another_process(optuna_sweep):
    sweep_dir, _ = optuna_sweep
    code = (
        "import optuna; "
        f"s = optuna.load_study(study_name='a3c', storage='sqlite:///{sweep_dir}/optuna.db'); "
        "print(' '.join(t.state.name for t in s.trials))"
    )
    reopened = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=cli_env()
    )
    assert reopened.returncode == 0, reopened.stderr[-2000:]
    states = reopened.stdout.split()
    statuses = [r["status"] for r in sorted(read_job_records(sweep_dir), key=lambda r: r["job"])]
    assert states == ["COMPLETE" if s == "completed" else "FAIL" for s in statuses]


def test_optuna_sweep_writes_optuna_plots(optuna_sweep):
    sweep_dir, _ = optuna_sweep
    for name in ("optuna_history.png", "optuna_importances.png", "optuna_slice.png"):
        assert (sweep_dir / name).stat().st_size > 10_000, name
    assert (sweep_dir / "summary_curves.png").is_file()


def test_wandb_summary_run_has_one_column_per_swept_key(optuna_sweep):
    sweep_dir, _ = optuna_sweep
    run_dir = next((sweep_dir / "wandb").glob("offline-run-*"))
    run = read_wandb_run(run_dir)
    assert run.job_type == "sweep-summary"
    logged = run.history[0]
    assert {"sweep/optuna_history", "sweep/optuna_slice", "sweep/summary_curves"} <= set(logged)
    table = json.loads((run_dir / "files" / logged["sweep/summary"]["path"]).read_text())
    swept = ["optim.lr", "loss.entropy_coef", "loss.gae_lambda", "rollout_len", "loss.gamma"]
    assert set(table["columns"]) == {
        "job",
        *swept,
        "objective",
        "steps_per_s",
        "wall_time_s",
        "status",
        "error",
    }
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert len(rows) == 4 and all(isinstance(r["optim.lr"], float) for r in rows)
    assert {r["loss.gamma"] for r in rows} == {0.99, 1.5}
    assert all((r["objective"] is None) == (r["status"] == "failed") for r in rows)
