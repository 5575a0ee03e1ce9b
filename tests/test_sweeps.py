"""--multirun sweeps: a job dir and W&B run per job, one group, a summary, failures listed."""

import csv
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


def test_optuna_sweep_records_the_best_trial(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep_dir = tmp_path / "optuna"
    result = _multirun(
        sweep_dir,
        "hydra/sweeper=a3c_optuna",
        "hydra.sweeper.n_trials=3",
        "workers=1",
        "logger=none",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_params" in best and "best_value" in best
    assert len(read_job_records(sweep_dir)) == 3
