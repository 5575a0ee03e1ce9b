"""End-to-end CartPole runs through the CLI: checkpoint, load_from_checkpoint, evaluation,
resume, SIGINT."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from a3c_exp.algo.module import A3CModule
from a3c_exp.checkpoint import load_checkpoint
from a3c_exp.reporting.wandb_file import read_wandb_run
from tests.helpers import cli_env, read_metrics, run_train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    result = run_train(run_dir, "experiment=cartpole_smoke")
    return run_dir, result


def test_smoke_run_writes_checkpoint_and_curve_and_no_wandb_files(smoke_run):
    run_dir, result = smoke_run
    assert not (run_dir / "wandb").exists()  # cartpole_smoke runs with logger=none
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert list((run_dir / "checkpoints").glob("step-*.ckpt"))
    rows = read_metrics(run_dir)
    assert rows and int(rows[-1]["global_step"]) >= 3000
    assert float(rows[-1]["Perf/Episodes"]) > 0
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "stop_reason=total_steps" in result.stderr + result.stdout


def test_checkpoint_loads_with_lightning_and_no_arguments(smoke_run):
    run_dir, _ = smoke_run
    module = A3CModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    logits, value, _ = module(torch.zeros(1, 4), module.net.initial_state(1))
    assert logits.shape == (1, 2) and value.shape == (1,)
    payload = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert payload["a3c"]["global_step"] >= 3000
    state = payload["optimizer_states"][0]["state"]
    # one optimizer step per applied update: ``updates`` counts applied ones only (a skipped
    # update, counted in ``skipped_updates``, never reached the optimizer)
    assert float(state[0]["step"]) == payload["a3c"]["updates"]


def _evaluate(run_dir, out_dir, *overrides):
    cmd = [
        sys.executable,
        "-m",
        "a3c_exp.evaluate",
        f"checkpoint={run_dir / 'checkpoints' / 'last.ckpt'}",
        f"hydra.run.dir={out_dir}",
        *overrides,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=cli_env())


def test_evaluation_is_reproducible_and_reports_every_episode(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    reports = []
    for name in ("first", "second"):
        result = _evaluate(run_dir, tmp_path / name, "episodes=5")
        assert result.returncode == 0, result.stderr
        reports.append(json.loads((tmp_path / name / "eval.json").read_text()))
    first, second = reports
    assert first["episodes"] == 5 and len(first["per_episode"]) == 5
    rewards = [episode["reward"] for episode in first["per_episode"]]
    assert first["mean_reward"] == pytest.approx(sum(rewards) / 5)
    # one seed for the whole evaluation: the same episodes every time
    assert first["per_episode"] == second["per_episode"]


def test_evaluation_of_a_missing_checkpoint_is_one_line_error(tmp_path):
    result = _evaluate(tmp_path / "nowhere", tmp_path / "out")
    assert result.returncode == 2
    assert (
        result.stderr.strip().startswith("error:") and len(result.stderr.strip().splitlines()) == 1
    )


def test_resume_continues_the_network_and_optimizer_under_the_new_learning_rate(
    smoke_run, tmp_path
):
    run_dir, _ = smoke_run
    before = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    resumed_dir = tmp_path / "resumed"
    # a learning rate so small that the resumed updates leave the weights where they were
    run_train(
        resumed_dir,
        "experiment=cartpole_smoke",
        "total_steps=6000",
        "optim.lr=1e-30",
        f"resume={run_dir / 'checkpoints' / 'last.ckpt'}",
    )
    after = load_checkpoint(resumed_dir / "checkpoints" / "last.ckpt")
    assert after["a3c"]["global_step"] >= 6000
    assert after["a3c"]["episodes"] > before["a3c"]["episodes"]
    rows = read_metrics(resumed_dir)
    assert int(rows[0]["global_step"]) >= before["a3c"]["global_step"]  # no reset of the x-axis
    # the value the command gave (the mean of the rates the interval's updates stepped with)
    assert float(rows[0]["Losses/Learning Rate"]) == pytest.approx(1e-30, rel=1e-9)
    assert after["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-30
    for name, weights in before["state_dict"].items():  # the saved network was carried over
        torch.testing.assert_close(after["state_dict"][name], weights, rtol=0, atol=1e-20)
    # Adam's step count went on from the saved one, one step per applied update
    assert after["a3c"]["updates"] > before["a3c"]["updates"]
    for state in after["optimizer_states"][0]["state"].values():
        assert float(state["step"]) == after["a3c"]["updates"]
    for state in before["optimizer_states"][0]["state"].values():
        assert float(state["step"]) == before["a3c"]["updates"]


def test_resume_under_another_optimizer_is_refused_unless_asked(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    last = run_dir / "checkpoints" / "last.ckpt"
    common = ["experiment=cartpole_smoke", "optim=shared_rmsprop", f"resume={last}"]
    result = run_train(tmp_path / "other", *common, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "resume_optimizer_state=false" in lines[0]
    assert not (tmp_path / "other" / "checkpoints").exists()
    run_train(tmp_path / "fresh", *common, "resume_optimizer_state=false", "total_steps=4000")
    after = load_checkpoint(tmp_path / "fresh" / "checkpoints" / "last.ckpt")
    assert after["a3c"]["optimizer"] == "shared_rmsprop"


def test_resume_with_other_model_shape_is_refused(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    result = run_train(
        tmp_path / "bad",
        "experiment=cartpole_smoke",
        "model.hidden_sizes=[32]",
        f"resume={run_dir / 'checkpoints' / 'last.ckpt'}",
        check=False,
    )
    assert result.returncode == 2
    assert "does not match this config's model" in result.stderr


def _descendants_alive(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [p for p in proc.children(recursive=True) if p.is_running()]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize(
    ("env_name", "stop_signal"), [("cartpole", signal.SIGTERM), ("doom", signal.SIGINT)]
)
def test_a_stop_signal_ends_run_with_checkpoint_and_no_child_left(tmp_path, env_name, stop_signal):
    run_dir = tmp_path / "interrupted"
    cmd = [
        sys.executable,
        "-m",
        "a3c_exp.train",
        f"hydra.run.dir={run_dir}",
        f"env={env_name}",
        "workers=2",
        "logger=none",
        "total_steps=100000000",
        "log_every=0.5",
    ]
    proc = subprocess.Popen(
        cmd,
        env=cli_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait until training is under way
        rows = read_metrics(run_dir)
        if rows and int(rows[-1]["global_step"]) > 0:
            break
        time.sleep(0.5)
    children = _descendants_alive(parent)
    assert len(children) >= 2  # the workers (and, for Doom, their engines)
    os.kill(proc.pid, stop_signal)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, output
    assert "stop_reason=interrupted" in output
    payload = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert payload["a3c"]["global_step"] > 0
    assert _alive_after(children, timeout=10) == []


def _alive_after(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of ``processes`` still running (zombies have exited) once they had ``timeout``
    seconds to exit; returns as soon as none is left."""
    deadline = time.monotonic() + timeout

    def alive() -> list[psutil.Process]:
        running = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    running.append(process)
            except psutil.NoSuchProcess:
                continue
        return running

    left = alive()
    while left and time.monotonic() < deadline:
        psutil.wait_procs(left, timeout=0.2)
        left = alive()
    return left


def test_resume_latest_continues_in_the_same_run_directory_and_wandb_run(tmp_path):
    run_dir = tmp_path / "continued"
    run_train(run_dir, "experiment=cartpole_smoke", "logger=wandb")
    first = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["a3c"]
    run_train(
        run_dir, "experiment=cartpole_smoke", "logger=wandb", "total_steps=6000", "resume=latest"
    )
    rows = read_metrics(run_dir)
    steps = [int(r["global_step"]) for r in rows]
    assert steps == sorted(steps) and steps[-1] >= 6000  # one curve, no reset, no jump back
    after = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["a3c"]
    assert after["episodes"] > first["episodes"] and after["updates"] > first["updates"]
    assert after["elapsed"] > first["elapsed"]
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2
    first_run, second_run = (read_wandb_run(path) for path in files)
    assert first_run.run_id == second_run.run_id  # one W&B run, continued
    first_steps = [row["global_step"] for row in first_run.history if "global_step" in row]
    second_steps = [row["global_step"] for row in second_run.history if "global_step" in row]
    assert second_steps[0] >= first_steps[-1] and second_steps[-1] >= 6000


def test_corrupt_resume_checkpoint_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    result = run_train(tmp_path / "r", "experiment=cartpole_smoke", f"resume={bad}", check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: resume: checkpoint {bad}")
