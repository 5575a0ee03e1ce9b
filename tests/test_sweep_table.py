"""The sweep table for W&B: one typed column per swept key, failed jobs without an objective."""

from a3c_exp.sweep import wandb_table_data


def _row(job, overrides, status="completed", objective=20.5, error=None):
    return {
        "job": job,
        "overrides": overrides,
        "status": status,
        "objective": objective,
        "wall_time_s": 10.0,
        "steps_per_s": 300.0,
        "error": error,
    }


def test_swept_keys_become_typed_columns_and_shared_ones_are_left_out():
    rows = [
        _row(0, ["env=cartpole", "workers=1", "optim.lr=0.001", "model=mlp", "logger=none"]),
        _row(1, ["env=cartpole", "workers=2", "optim.lr=0.0005", "model=mlp", "logger=none"]),
        _row(
            2,
            ["env=cartpole", "workers=2", "optim.lr=0.002", "model=mlp", "loss.gamma=1.5"],
            status="failed",
            objective=None,
            error="loss.gamma=1.5: must be in (0, 1]",
        ),
    ]
    columns, data = wandb_table_data(rows)
    assert columns == [
        "job",
        "workers",
        "optim.lr",
        "loss.gamma",
        "objective",
        "steps_per_s",
        "wall_time_s",
        "status",
        "error",
    ]
    assert data[0] == [0, 1, 0.001, None, 20.5, 300.0, 10.0, "completed", ""]
    assert data[2][3] == 1.5 and data[2][4] is None and data[2][7] == "failed"
    assert isinstance(data[1][1], int) and isinstance(data[1][2], float)


def test_a_nan_objective_is_sent_as_missing():
    columns, data = wandb_table_data([_row(0, ["seed=1"], objective=float("nan"))])
    assert columns[1] == "objective" and data[0][1] is None  # one job: no key varies


def test_a_jobs_end_rewrites_the_job_table_and_leaves_seed_statistics_to_the_sweeps_end(
    tmp_path, monkeypatch
):
    from types import SimpleNamespace

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from a3c_exp import sweep

    for job, seed in enumerate([0, 1]):
        (tmp_path / str(job)).mkdir()
        record = {"job": job, "overrides": [f"seed={seed}"], "status": "completed"}
        sweep.write_job_record(tmp_path / str(job), {**record, "objective": 1.0 + job})
    hydra_cfg = SimpleNamespace(mode=RunMode.MULTIRUN, sweep=SimpleNamespace(dir=str(tmp_path)))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: hydra_cfg))
    sweep.SweepSummaryCallback().on_job_end(config=None, job_return=None)
    assert len((tmp_path / "summary.csv").read_text().splitlines()) == 3  # header + 2 jobs
    # no statistics over seeds in the job's slot (SciPy's import, the bootstrap)
    assert not (tmp_path / "summary_configs.csv").exists()
    assert "Per config" not in (tmp_path / "summary.md").read_text()
    sweep.summarise_sweep(tmp_path, plot=False)  # the sweep's end makes them
    assert (tmp_path / "summary_configs.csv").exists()
