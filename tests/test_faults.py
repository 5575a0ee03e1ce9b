"""Fault handling: killed workers restart, limits stop runs cleanly, NaN updates are skipped."""

import contextlib
import signal
import subprocess
import sys
import time

import psutil
import pytest

from a3c_exp.checkpoint import load_checkpoint
from a3c_exp.runtime.processes import worker_processes
from tests.helpers import cli_env, read_metrics, run_train

pytestmark = pytest.mark.slow

BASE = ["env=cartpole", "workers=2", "logger=none", "log_every=0.5", "target_reward=null"]


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():
    """A test that fails half-way must not leave its training run (and workers) running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            tree = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
            for process in tree:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            proc.wait(timeout=30)


def _start(run_dir, *overrides):
    cmd = [sys.executable, "-m", "a3c_exp.train", f"hydra.run.dir={run_dir}", *BASE, *overrides]
    proc = subprocess.Popen(
        cmd,
        env=cli_env(),
        cwd=run_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _STARTED.append(proc)
    return proc


def _wait_for_training(run_dir, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = read_metrics(run_dir)
        if rows and int(rows[-1]["global_step"]) > 0:
            return
        time.sleep(0.3)
    raise AssertionError("training did not start")


def _workers(proc):
    return worker_processes(proc.pid)


def test_a_killed_worker_is_restarted_until_its_restart_limit_stops_the_run(tmp_path):
    run_dir = tmp_path / "restart"
    proc = _start(run_dir, "total_steps=100000000", "max_restarts=1")
    _wait_for_training(run_dir)
    children = psutil.Process(proc.pid).children(recursive=True)
    original = {p.pid for p in _workers(proc)}
    victim = _workers(proc)[0]
    victim.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    pids = original
    while time.monotonic() < deadline:  # noticed and replaced within a few seconds
        pids = {p.pid for p in _workers(proc)}
        if victim.pid not in pids and len(pids) == 2:
            break
        time.sleep(0.2)
    assert len(pids - original) == 1 and victim.pid not in pids  # one new worker in its place
    steps_after_restart = int(read_metrics(run_dir)[-1]["global_step"])
    time.sleep(3)
    assert int(read_metrics(run_dir)[-1]["global_step"]) > steps_after_restart  # learns again
    # the same rank killed again is past its limit: the run stops, its checkpoint kept
    children += psutil.Process(proc.pid).children(recursive=True)  # the new worker too
    psutil.Process((pids - original).pop()).send_signal(signal.SIGKILL)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert "was killed by SIGKILL; restarting it (1/1)" in output
    assert "restart limit max_restarts=1" in output
    assert read_metrics(run_dir)[-1]["Faults/Worker restarts"] == "1"
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["a3c"]["global_step"] > 0
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_nan_updates_are_skipped_and_counted(tmp_path):
    run_dir = tmp_path / "somenan"
    run_train(
        run_dir,
        *BASE,
        "env.id=tests.fault_envs:NanRewardCartPole-v0",
        "+env.kwargs.nan_every=300",
        "total_steps=6000",
    )
    last = read_metrics(run_dir)[-1]
    assert int(last["Faults/Skipped updates"]) > 0
    assert int(last["Perf/Updates"]) > int(last["Faults/Skipped updates"])  # others went through
    payload = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert all(t.isfinite().all() for t in payload["state_dict"].values())


def test_consecutive_nan_updates_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "allnan"
    result = run_train(
        run_dir,
        *BASE,
        "env.id=tests.fault_envs:NanRewardCartPole-v0",
        "max_skipped_updates=5",
        "total_steps=100000",
        check=False,
    )
    assert result.returncode == 1
    assert "5 consecutive updates had a NaN or inf loss" in result.stdout + result.stderr
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()  # nothing bad was saved


def test_one_worker_always_skipping_trips_the_limit_beside_healthy_ones(tmp_path):
    run_dir = tmp_path / "onenan"
    result = run_train(
        run_dir,
        *BASE,
        "env.id=tests.fault_envs:NanForEvenSeedCartPole-v0",
        # enough for worker 1 to finish episodes even when it starts seconds after worker 0
        "max_skipped_updates=300",
        "total_steps=100000",
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "worker 0: 300 consecutive updates had a NaN or inf loss" in output
    rows = read_metrics(run_dir)
    assert rows and float(rows[-1]["Perf/Mean Reward (last 100)"]) > 0  # worker 1 went on


def test_main_process_killed_leaves_no_worker_or_engine(tmp_path):
    run_dir = tmp_path / "orphans"
    proc = _start(run_dir, "total_steps=100000000", "env=doom")
    _wait_for_training(run_dir)
    descendants = psutil.Process(proc.pid).children(recursive=True)
    assert any("vizdoom" in " ".join(p.cmdline()) for p in descendants)  # engines running
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    alive = descendants
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
