"""--multirun sweeps: a job dir and W&B run per job, one group, a summary, failures listed."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from a3c_exp.reporting.wandb_file import read_wandb_run
from a3c_exp.runtime.trial import read_reports, request_prune
from a3c_exp.sweep import read_job_records
from tests.helpers import cli_env, start_as_a_terminal_job

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


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory):
    """A 3-trial Optuna study, 2 seeds a trial, logged to W&B; trials drawing gamma 1.5 fail."""
    sweep_dir = tmp_path_factory.mktemp("optuna") / "sweep"
    result = _multirun(
        sweep_dir,
        "hydra/sweeper=a3c_optuna",
        "hydra/launcher=parallel_local",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.seeds_per_trial=2",
        "loss.gamma=choice(1.5,0.99)",  # sampler seed 0 draws 1.5 once, 0.99 twice
        "workers=1",
        "logger=wandb",
    )
    return sweep_dir, result


def test_optuna_study_goes_on_after_a_failed_trial_and_lists_it(optuna_sweep):
    sweep_dir, result = optuna_sweep
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_job_records(sweep_dir)
    assert len(records) == 6  # 3 trials x 2 seeds
    failed = [r for r in records if r["status"] == "failed"]
    completed = [r for r in records if r["status"] == "completed"]
    assert len(failed) == 2 and len(completed) == 4  # one trial's two seeds failed
    assert all(r["error"] == "loss.gamma=1.5: must be in (0, 1]" for r in failed)
    assert all("loss.gamma=0.99" in r["overrides"] for r in completed)
    best = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_params" in best and "best_value" in best
    summary = (sweep_dir / "summary.md").read_text()
    assert summary.count("| failed |") == len(failed) and "must be in (0, 1]" in summary


def test_each_trial_runs_its_seeds_and_the_summary_aggregates_them(optuna_sweep):
    sweep_dir, _ = optuna_sweep
    import optuna

    study = optuna.load_study(study_name="a3c", storage=f"sqlite:///{sweep_dir}/optuna.db")
    records = {r["job"]: r for r in read_job_records(sweep_dir)}
    for trial in study.trials:
        jobs = [records[j] for j in trial.user_attrs["jobs"]]
        assert [r["overrides"][-3:-1] for r in jobs] == [
            ["seed=0", f"trial={trial.number}"],
            ["seed=1", f"trial={trial.number}"],
        ]
        if trial.state.name == "COMPLETE":  # the trial's value is the mean over its seeds
            assert trial.value == pytest.approx(sum(r["objective"] for r in jobs) / 2)
    with open(sweep_dir / "summary_configs.csv", newline="") as handle:
        configs = list(csv.DictReader(handle))
    assert len(configs) == 3 and all(c["config"].endswith("(n=2)") for c in configs)
    done = [c for c in configs if c["statuses"] == "2 completed"]
    assert len(done) == 2 and all(c["n"] == "2" and c["ci95_low"] for c in done)
    assert "## Per config, over its seeds" in (sweep_dir / "summary.md").read_text()
    with open(sweep_dir / "schedule.csv", newline="") as handle:
        schedule = list(csv.DictReader(handle))
    assert sorted(int(r["job"]) for r in schedule) == list(range(6))
    assert all(float(r["ended_at"]) > float(r["started_at"]) for r in schedule)


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
    assert sorted(reopened.stdout.split()) == ["COMPLETE", "COMPLETE", "FAIL"]


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
    assert "sweep/configs" in logged  # the seeds of each config, aggregated
    table = json.loads((run_dir / "files" / logged["sweep/summary"]["path"]).read_text())
    swept = ["optim.lr", "loss.entropy_coef", "loss.gae_lambda", "rollout_len", "loss.gamma"]
    assert set(table["columns"]) == {
        "job",
        *swept,
        "seed",
        "objective",
        "steps_per_s",
        "wall_time_s",
        "status",
        "error",
    }
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert len(rows) == 6 and all(isinstance(r["optim.lr"], float) for r in rows)
    assert {r["loss.gamma"] for r in rows} == {0.99, 1.5}
    assert all((r["objective"] is None) == (r["status"] == "failed") for r in rows)
    assert run.summary["jobs_completed"] == 4 and run.summary["jobs_failed"] == 2


def test_a_pruned_job_stops_as_a_run_stops(tmp_path):
    """The sweeper's prune request ends a job: final checkpoint, W&B finished, exit 0."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "a3c_exp.train", f"hydra.run.dir={run_dir}", *TINY]
    cmd += ["total_steps=10000000", "trial_report_every=500", "workers=1", "logger=wandb"]
    job = subprocess.Popen(
        cmd,
        env=cli_env(),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(read_reports(run_dir)) < 2:
            assert time.monotonic() < deadline and job.poll() is None, "no reports"
            time.sleep(0.2)
        request_prune(run_dir)
        _, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, stderr[-2000:]
    reports = read_reports(run_dir)
    assert list(reports) == [500 * k for k in range(1, len(reports) + 1)]
    run = read_wandb_run(run_dir / "wandb")
    assert run.exit_code == 0 and run.summary["stop_reason"] == "pruned"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert run.summary["total_steps"] < 10000000


def test_a_stopped_optuna_sweep_resumes_where_it_stopped(tmp_path):
    """Ctrl-C in the second trial; the same command again ends with n_trials finished."""
    import optuna

    sweep_dir = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "a3c_exp.train", "--multirun", f"hydra.sweep.dir={sweep_dir}"]
    cmd += ["hydra/sweeper=a3c_optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.pruner=none"]
    cmd += ["hydra/launcher=parallel_local", "hydra.launcher.array_parallelism=1", *TINY]
    cmd += ["workers=1", "logger=none"]
    sweep = start_as_a_terminal_job([*cmd, "total_steps=3000"], tmp_path)
    try:
        deadline = time.monotonic() + 180
        while not (sweep_dir / "1" / "metrics.csv").exists():
            assert time.monotonic() < deadline and sweep.poll() is None, "job 1 did not train"
            time.sleep(0.2)
        os.killpg(sweep.pid, signal.SIGINT)
        assert sweep.wait(timeout=60) == 130
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    first = {p: p.read_bytes() for p in (sweep_dir / "0").rglob("*") if p.is_file()}
    assert json.loads((sweep_dir / "0" / "job.json").read_text())["status"] == "completed"
    resumed = subprocess.run(
        [*cmd, "total_steps=3000"],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = optuna.load_study(study_name="a3c", storage=f"sqlite:///{sweep_dir}/optuna.db")
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert study.trials[1].user_attrs["interrupted"] is True
    assert [t.user_attrs["jobs"] for t in study.trials] == [[0], [1], [2], [3]]
    assert {p: p.read_bytes() for p in first} == first  # the first job's files untouched
    assert json.loads((sweep_dir / "1" / "job.json").read_text())["status"] == "interrupted"


@pytest.mark.parametrize(
    ("launcher", "skipped"),
    [("parallel_local", "(done)"), ("basic", "completed before (job.json): not run again")],
)
def test_a_failing_job_is_listed_and_a_rerun_over_its_directory_runs_only_unfinished_jobs(
    tmp_path, launcher, skipped
):
    sweep_dir = tmp_path / "grid"
    overrides = (f"hydra/launcher={launcher}", "workers=1", "loss.gamma=1.5,0.99", "logger=none")
    assert _multirun(sweep_dir, *overrides).returncode != 0  # Hydra reports the failed job
    records = {r["job"]: r for r in read_job_records(sweep_dir)}
    # job 0 failed before it trained; job 1 ran after it all the same
    assert records[0]["status"] == "failed" and records[1]["status"] == "completed"
    assert "loss.gamma=1.5" in records[0]["overrides"]
    assert records[0]["error"] == "loss.gamma=1.5: must be in (0, 1]"
    summary = (sweep_dir / "summary.md").read_text()
    assert "loss.gamma=1.5" in summary and "must be in (0, 1]" in summary
    done = (sweep_dir / "1" / "job.json").read_text()
    again = _multirun(sweep_dir, *overrides)
    assert skipped in again.stdout + again.stderr  # job 1 was not run again
    assert (sweep_dir / "1" / "job.json").read_text() == done
    records = {r["job"]: r for r in read_job_records(sweep_dir)}
    assert records[1]["status"] == "completed" and records[0]["status"] == "failed"
