"""The worker-pool interface, run against both backends: local processes and Ray actors.

Each test drives a pool the way ``Run`` does (start, poll, supervise, snapshot, stop, close) on
CartPole with two workers. The Ray tests start a local Ray of their own (sockets and logs in a
short temporary folder) and check that nothing of it is left afterwards.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from a3c_exp.algo.module import A3CModule
from a3c_exp.config import as_plain_data
from a3c_exp.envs import EnvSpec
from a3c_exp.runtime.checks import load_validated

BACKENDS = ["local", pytest.param("ray", marks=pytest.mark.slow)]
RAY_PROCESSES = ("raylet", "gcs_server", "ray::")


@pytest.fixture(autouse=True)
def ray_tmpdir(monkeypatch) -> str:
    """This test's own Ray folder (sockets, logs): short, for the path-length limit of Unix
    sockets, and the mark of every Ray process this test starts."""
    folder = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", folder)
    return folder


def _ray_processes(ray_tmpdir: str) -> list[psutil.Process]:
    """The live Ray processes started by this test, wherever they were reparented.

    A test beside this one (the suite runs two at once) may run a Ray of its own: only
    processes that belong to this test's ``RAY_TMPDIR`` count, by their command line (the
    session folder) or their environment (worker actors rename their command line). A zombie
    has exited already (only its parent's reaping is left).
    """
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        text = " ".join([proc.info["name"] or "", *(proc.info["cmdline"] or [])])
        if not any(marker in text for marker in RAY_PROCESSES):
            continue
        try:
            ours = ray_tmpdir in text or proc.environ().get("RAY_TMPDIR") == ray_tmpdir
        except psutil.Error:  # exited while we looked, or not ours to read
            continue
        if ours:
            found.append(proc)
    return found


def _wait_for_ray_to_exit(ray_tmpdir: str, timeout: float = 30.0) -> list[psutil.Process]:
    """This test's Ray processes still alive after waiting up to ``timeout`` for them to go."""
    deadline = time.monotonic() + timeout
    left = _ray_processes(ray_tmpdir)
    while left and time.monotonic() < deadline:
        psutil.wait_procs(left, timeout=min(1.0, max(0.0, deadline - time.monotonic())))
        left = _ray_processes(ray_tmpdir)
    return left


def _pool(compose_train, tmp_path, backend, *overrides):
    cfg = load_validated(
        compose_train(
            [
                "env=cartpole",
                "workers=2",
                "logger=none",
                "video_every=0",  # worker 0 would spend its first seconds writing a GIF
                f"runtime={backend}",
                *(
                    ["runtime.report_seconds=0.2", "runtime.cpus_per_worker=0.5"]
                    * (backend == "ray")
                ),
                *overrides,
            ]
        )
    )
    if backend == "local":
        from a3c_exp.runtime.local_pool import LocalPool as Pool
    else:
        from a3c_exp.runtime.ray_pool import RayPool as Pool
    steps = {"n": 0}
    pool = Pool(cfg, EnvSpec((4,), 2), tmp_path, lambda: steps["n"])
    return pool, steps


def _train_until(pool, steps, updates_wanted, ranks=None, timeout=120):
    """Poll and supervise like Run does until ``updates_wanted`` updates (from ``ranks``)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for update in pool.poll(0.05):
            steps["n"] += update.steps
            if ranks is None or update.rank in ranks:
                seen.append(update)
        failure = pool.supervise()
        assert failure is None, failure
        if len(seen) >= updates_wanted:
            return seen
    raise AssertionError(f"only {len(seen)} updates in {timeout} s")


def _worker_pid(pool, backend, rank):
    if backend == "local":
        return pool._workers[rank].pid
    import ray

    return ray.get(pool._actors[rank].where.remote())[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_trains_and_snapshots_one_consistent_state(
    compose_train, tmp_path, backend, ray_tmpdir
):
    pool, steps = _pool(compose_train, tmp_path, backend)
    try:
        pool.start()
        updates = _train_until(pool, steps, 20)
        assert {u.rank for u in updates} == {0, 1}  # both workers learn
        snapshot = pool.snapshot()
        assert snapshot.applied_updates >= 1 and snapshot.optimizer == "shared_adam"
        for state in snapshot.optimizer_state["state"].values():
            assert int(state["step"]) == snapshot.applied_updates
        assert set(snapshot.weights) == set(A3CModule(*_module_args(pool)).state_dict())
        # the env steps were counted with the updates, at the snapshot's instant
        per_update = pool.cfg.rollout_len * pool.cfg.envs_per_worker
        counts = snapshot.counts
        assert counts.steps == per_update * (counts.applied + counts.skipped)
        pool.stop(grace=2.0)
        after = pool.counts()
        assert after.applied >= counts.applied
        received = steps["n"] + sum(u.steps for u in pool.poll(0.0))
        assert after.steps >= received  # nothing a worker sent is missing from the counts
    finally:
        pool.close()
    if backend == "ray":
        assert _wait_for_ray_to_exit(ray_tmpdir) == []  # the Ray this pool started is gone


def _module_args(pool):
    return as_plain_data(pool.cfg), [4], 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_worker_is_replaced_and_learns_until_its_restart_limit_fails_the_pool(
    compose_train, tmp_path, backend
):
    pool, steps = _pool(compose_train, tmp_path, backend, "max_restarts=1")
    try:
        pool.start()
        _train_until(pool, steps, 4)
        victim = _worker_pid(pool, backend, 0)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while pool.restarts == 0 and time.monotonic() < deadline:  # noticed and replaced
            for update in pool.poll(0.05):
                steps["n"] += update.steps
            assert pool.supervise() is None
        assert pool.restarts == 1
        replacement = _worker_pid(pool, backend, 0)
        assert replacement != victim
        _train_until(pool, steps, 3, ranks={0}, timeout=180)  # and the new worker 0 learns
        os.kill(replacement, signal.SIGKILL)  # once more: past worker 0's limit
        deadline = time.monotonic() + 60
        failure = None
        while failure is None and time.monotonic() < deadline:
            pool.poll(0.1)
            failure = pool.supervise()
        assert failure is not None and failure.startswith("worker 0 ")
        assert "restart limit max_restarts=1 reached" in failure
    finally:
        pool.stop(grace=0.0)
        pool.close()


def test_step_lock_lives_on_the_node_not_in_the_run_directory(compose_train, tmp_path):
    """The run directory may be on a shared file system where flock does not hold."""
    pool, steps = _pool(compose_train, tmp_path, "local")
    lock = Path(pool._lock.path)
    try:
        pool.start()
        _train_until(pool, steps, 2)
        assert lock.is_file() and tmp_path not in lock.parents
        pool.stop(grace=2.0)
    finally:
        pool.close()
    assert not lock.parent.exists()  # its folder goes with the pool
    assert not list(tmp_path.rglob("*.lock"))
