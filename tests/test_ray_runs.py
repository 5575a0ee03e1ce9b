"""``runtime=ray`` through the command line: signals, resume across backends, a 2-node cluster,
sweep jobs as Ray tasks.

Every test points Ray's sockets and logs into a short temporary folder (``RAY_TMPDIR``) and
checks that no process of a Ray it started survives it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from a3c_exp.checkpoint import load_checkpoint
from tests.helpers import cli_env, read_metrics, run_train

pytestmark = pytest.mark.slow

BASE = ["env=cartpole", "workers=2", "logger=none", "log_every=0.5", "target_reward=null"]
RAY_MARKERS = ("raylet", "gcs_server", "ray::", "ray/dashboard", "ray/_private")


@pytest.fixture
def ray_env(monkeypatch):
    """The CLI environment with Ray's temporary folder short enough for its sockets."""
    folder = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", folder)
    env = cli_env()
    env["RAY_TMPDIR"] = folder
    return env


def _descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).children(recursive=True)
    return []


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _start(run_dir, env, *overrides):
    cmd = [sys.executable, "-m", "a3c_exp.train", f"hydra.run.dir={run_dir}", *BASE, *overrides]
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=run_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_steps(run_dir, proc, above=0, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = read_metrics(run_dir)
        if rows and int(rows[-1]["global_step"]) > above:
            return int(rows[-1]["global_step"])
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        time.sleep(0.5)
    raise AssertionError(f"no training past step {above} within {timeout} s")


def test_a_checkpoint_resumes_on_the_other_backend_and_sigterm_leaves_no_ray_process(
    tmp_path, ray_env
):
    """local -> Ray (a Ray of the run's own, stopped by SIGTERM) -> local again."""
    local_dir, ray_dir, back_dir = tmp_path / "local", tmp_path / "ray", tmp_path / "back"
    run_train(local_dir, *BASE, "total_steps=3000", timeout=180)
    first = load_checkpoint(local_dir / "checkpoints" / "last.ckpt")
    resume = f"resume={local_dir / 'checkpoints' / 'last.ckpt'}"
    proc = _start(ray_dir, ray_env, "runtime=ray", "total_steps=100000000", resume)
    try:
        _wait_for_steps(ray_dir, proc, above=first["a3c"]["global_step"])
        ray_processes = [
            p
            for p in _descendants(proc.pid)
            if any(m in " ".join(p.cmdline()) for m in RAY_MARKERS)
        ]
        assert ray_processes, "the run started no Ray of its own"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    second = load_checkpoint(ray_dir / "checkpoints" / "last.ckpt")
    # a loaded machine overshoots a budget this small, so the last leg goes 3,000 steps past
    more = f"total_steps={second['a3c']['global_step'] + 3000}"
    run_train(back_dir, *BASE, more, f"resume={ray_dir / 'checkpoints' / 'last.ckpt'}")
    third = load_checkpoint(back_dir / "checkpoints" / "last.ckpt")
    for before, after in ((first, second), (second, third)):
        assert after["a3c"]["global_step"] > before["a3c"]["global_step"]
        assert after["a3c"]["updates"] > before["a3c"]["updates"]
        assert after["a3c"]["episodes"] > before["a3c"]["episodes"]
    for payload in (first, second, third):
        steps = {int(s["step"]) for s in payload["optimizer_states"][0]["state"].values()}
        assert steps == {payload["a3c"]["updates"]}  # Adam's count went on across backends
    time.sleep(2.0)
    assert _alive(ray_processes) == []


def test_two_node_cluster_spreads_workers_and_survives_losing_one(tmp_path, ray_env):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    other = cluster.add_node(num_cpus=1)
    run_dir = tmp_path / "cluster"
    proc = None
    try:
        cluster.wait_for_nodes()
        proc = _start(
            run_dir,
            ray_env,
            "runtime=ray",
            f"runtime.address={cluster.address}",
            "runtime.cpus_per_worker=0.5",
            "total_steps=100000000",
            "max_restarts=3",
        )
        before = _wait_for_steps(run_dir, proc)
        cluster.remove_node(other)
        after = _wait_for_steps(run_dir, proc, above=before + 3000, timeout=180)
        assert after > before
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        cluster.shutdown()
    assert "on 2 node(s)" in output  # the workers were spread over both nodes
    assert "restarting it (1/3)" in output  # the lost node's worker came back on the other
    assert proc.returncode == 130, output
    steps = [int(r["global_step"]) for r in read_metrics(run_dir)]
    assert steps == sorted(steps)


def test_ray_launcher_runs_each_sweep_job_as_a_ray_task_keeping_its_slots_busy(tmp_path, ray_env):
    """The Optuna sweeper over the Ray launcher: one Ray task and W&B run per job, one group,
    and a job started only when a slot frees."""
    pytest.importorskip(
        "hydra_plugins.hydra_ray_launcher",
        reason="hydra-ray-launcher is installed with --no-deps (see docs/clusters.md)",
    )
    import csv

    from a3c_exp.reporting.wandb_file import read_wandb_run

    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "a3c_exp.train", "--multirun", f"hydra.sweep.dir={sweep_dir}"]
    cmd += ["hydra/launcher=ray", "hydra/sweeper=a3c_optuna", "hydra.sweeper.n_trials=3"]
    cmd += ["hydra.sweeper.pruner=none", "env=cartpole", "workers=1", "total_steps=1500"]
    cmd += ["video_every=0", "target_reward=null", "logger=wandb", "checkpoint_every=0"]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env=ray_env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 job slots" in result.stdout + result.stderr  # 2 CPUs, 1 a job
    assert "_run_job pid=" in result.stdout + result.stderr  # the jobs ran as Ray tasks
    with open(sweep_dir / "schedule.csv", newline="") as handle:
        jobs = list(csv.DictReader(handle))
    assert [r["status"] for r in jobs] == ["completed"] * 3
    first_end = min(float(r["ended_at"]) for r in jobs)
    third = max(jobs, key=lambda r: float(r["started_at"]))
    assert float(third["started_at"]) >= first_end  # started when a slot freed, not before
    runs = [read_wandb_run(sweep_dir / str(job) / "wandb") for job in (0, 1, 2)]
    assert len({run.run_id for run in runs}) == 3
    assert len({run.group for run in runs}) == 1 and runs[0].group.startswith("sweep-")
