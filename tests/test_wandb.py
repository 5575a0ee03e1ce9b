"""The W&B run of a training job, read back from its offline file (no network)."""

import pytest

from a3c_exp.reporting.wandb_file import read_wandb_run
from tests.helpers import run_train

pytestmark = pytest.mark.slow

TUTORIAL_SUMMARIES = {
    "Perf/Reward",
    "Perf/Length",
    "Perf/Value",
    "Losses/Value Loss",
    "Losses/Policy Loss",
    "Losses/Entropy",
    "Losses/Grad Norm",
    "Losses/Var Norm",
}


def test_offline_run_holds_tutorial_summaries_against_env_steps(tmp_path):
    run_dir = tmp_path / "wb"
    run_train(run_dir, "experiment=cartpole_smoke", "logger=wandb", "loss.entropy_coef=0.02")
    run = read_wandb_run(run_dir / "wandb")
    assert run.exit_code == 0
    assert run.metric_keys() >= TUTORIAL_SUMMARIES
    steps = [row["global_step"] for row in run.history if "global_step" in row]
    assert steps == sorted(steps) and steps[-1] >= 3000
    assert run.config["env"]["id"] == "CartPole-v1" and run.config["workers"] == 2
    assert run.config["loss"]["entropy_coef"] == 0.02
    assert run.summary["total_steps"] >= 3000 and "final_mean_reward" in run.summary
    assert run.name == "cartpole-w2-cartpole_smoke-ent0.02"


def test_logger_none_writes_no_wandb_files(tmp_path):
    run_dir = tmp_path / "nowb"
    run_train(run_dir, "experiment=cartpole_smoke", "logger=none")
    assert not (run_dir / "wandb").exists()
