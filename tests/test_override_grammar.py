"""Hydra's whole override and sweep grammar reaches the run, and so do config folders of a user."""

import subprocess
import sys

import pytest

from a3c_exp.sweep import read_job_records
from tests.helpers import cli_env

pytestmark = pytest.mark.slow


def test_sweep_expressions_and_a_users_config_dir_run_their_jobs(tmp_path):
    user_conf = tmp_path / "my_conf"
    (user_conf / "env").mkdir(parents=True)
    (user_conf / "env" / "my_cartpole.yaml").write_text(
        "# @package _global_\ndefaults:\n  - cartpole\nenv:\n  name: my_cartpole\n"
    )
    sweep_dir = tmp_path / "sweep"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "a3c_exp.train",
            "--multirun",
            f"--config-dir={user_conf}",
            f"hydra.sweep.dir={sweep_dir}",
            "env=my_cartpole",
            "optim=glob(*)",
            "loss.entropy_coef=range(0.001,0.01,0.006)",
            "workers=1",
            "total_steps=600",
            "logger=none",
            "video_every=0",
            "checkpoint_every=0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_job_records(sweep_dir)
    assert len(records) == 4 and all(r["status"] == "completed" for r in records)
    combos = {
        (o["optim"], o["loss.entropy_coef"])
        for o in (dict(x.split("=", 1) for x in r["overrides"]) for r in records)
    }
    assert combos == {
        (optim, coef) for optim in ("shared_adam", "shared_rmsprop") for coef in ("0.001", "0.007")
    }
    assert all("env=my_cartpole" in r["overrides"] for r in records)
