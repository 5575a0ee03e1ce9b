"""``logger=tensorboard``: the run's metrics read back with TensorBoard's own reader, on the
env-step axis, beside W&B; and a run with curiosity (``intrinsic=icm``) that logs its terms."""

from __future__ import annotations

import math

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from a3c_exp.checkpoint import load_checkpoint
from a3c_exp.reporting.wandb_file import read_wandb_run
from tests.helpers import read_metrics, run_train

pytestmark = pytest.mark.slow


def _scalars(run_dir):
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def test_tensorboard_and_wandb_log_the_same_metrics_at_the_same_env_steps(tmp_path):
    run_dir = tmp_path / "icm"
    common = ["experiment=cartpole_smoke", "intrinsic=icm", "intrinsic.hidden_size=32"]
    run_train(run_dir, *common, "logger=[wandb,tensorboard]", "total_steps=4000")
    rows = read_metrics(run_dir)
    scalars = _scalars(run_dir)
    for key in ("Perf/Mean Reward (last 100)", "Losses/Entropy", "Intrinsic/Reward"):
        logged = [(e.step, e.value) for e in scalars[key]]
        in_csv = [(int(r["global_step"]), float(r[key])) for r in rows if r[key]]
        assert logged and [s for s, _ in logged] == [s for s, _ in in_csv], key
        assert all(
            math.isclose(a, b, rel_tol=1e-5) for (_, a), (_, b) in zip(logged, in_csv, strict=True)
        )
    for key in ("Intrinsic/Loss", "Intrinsic/Forward Loss", "Intrinsic/Inverse Loss"):
        assert key in scalars and all(math.isfinite(e.value) for e in scalars[key]), key
    assert scalars["Intrinsic/Reward"][-1].value > 0
    wandb_run = read_wandb_run(next((run_dir / "wandb").glob("offline-run-*")))
    assert any("Intrinsic/Reward" in row for row in wandb_run.history)
    payload = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert any(key.startswith("intrinsic.") for key in payload["state_dict"])

    # the same command with resume=latest continues the curve; TensorBoard keeps one point a step
    run_train(run_dir, *common, "logger=[wandb,tensorboard]", "total_steps=6000", "resume=latest")
    steps = [e.step for e in _scalars(run_dir)["Perf/Mean Reward (last 100)"]]
    assert steps == sorted(set(steps)) and steps[-1] >= 6000
    assert (
        read_wandb_run(next((run_dir / "wandb").glob("offline-run-*"))).run_id == wandb_run.run_id
    )
