"""``LocalPool``: A3C workers as processes on this machine, sharing memory.

The global network and the optimizer statistics live in shared memory; each worker process
steps the shared optimizer itself, under a file lock the kernel releases if the holder dies.
Workers start from a fork server (or spawn), may be pinned to CPUs, talk through one pipe each,
and are stopped by an event, then SIGTERM, then SIGKILL to their process group (so the ViZDoom
engines go with them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

from a3c_exp.checkpoint import COUNT_FIELDS, Counts, ResumeState, Snapshot, counts_of, take_snapshot
from a3c_exp.config import TrainConfig
from a3c_exp.envs import EnvSpec
from a3c_exp.messages import Message, Ready, Update, WorkerError
from a3c_exp.optim.shared import load_shared_state
from a3c_exp.runtime.locks import FileLock
from a3c_exp.runtime.pool import PoolBase
from a3c_exp.runtime.worker import run_worker, worker_spec
from a3c_exp.typing import Metrics

log = logging.getLogger("a3c_exp")


def _kill_group(process: Any) -> None:
    """SIGKILL a worker's whole process group: the worker and its ViZDoom engines."""
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# The modules a fork server imports once for every worker it forks, by env kind.
_PRELOAD = {"vizdoom": ["a3c_exp.envs.vizdoom_env"], "atari": ["ale_py"]}


class LocalPool(PoolBase):
    """``cfg.workers`` worker processes training a global network in shared memory."""

    def __init__(
        self,
        cfg: TrainConfig,
        env_spec: EnvSpec,
        run_dir: Path,
        global_step: Callable[[], int],
    ):
        super().__init__(cfg, env_spec, run_dir, global_step)
        self.model.share_memory()  # the global network (and loss terms) the workers step
        self.optimizer = self.model.configure_optimizers()  # its statistics are shared too
        self._ctx = mp.get_context(cfg.runtime.start_method)
        if cfg.runtime.start_method == "forkserver":
            # The server imports torch and the worker code once; each worker is then a cheap fork
            # of it instead of a fresh interpreter importing everything again. It starts now, so
            # its imports run while the run opens its sinks, not after.
            preload = ["a3c_exp.runtime.worker", *_PRELOAD.get(cfg.env.kind, [])]
            self._ctx.set_forkserver_preload(preload)
            from multiprocessing import forkserver

            forkserver.ensure_running()
        self._readers: dict[int, Any] = {}  # rank -> read end of that worker's pipe
        self._stop_event = self._ctx.Event()
        # flock, not multiprocessing.Lock: a worker killed inside the step must not freeze the
        # others (the kernel releases the lock of a dead process). Snapshots always take it;
        # workers take it for their step unless lock_optimizer_step=false. Its file lives in a
        # temporary folder of this node, not in the run directory: that is often on a shared
        # file system, where flock may be unsupported or slow.
        self._lock_dir = Path(tempfile.mkdtemp(prefix="a3c-step-lock-"))
        self._lock = FileLock(self._lock_dir / "optimizer.lock")
        # updates (applied, skipped) with their env steps and episodes, counted by the workers
        # under the lock where the step happens (checkpoint.COUNT_FIELDS)
        self._counts = torch.zeros(len(COUNT_FIELDS), dtype=torch.int64).share_memory_()
        self._workers: list[Any] = []
        self._last_seen: dict[int, float] = {}
        self._tracebacks: dict[int, str] = {}
        self._pending: list[Update] = []

    def restore(self, state: ResumeState) -> None:
        """Continue from a checkpoint: weights, optimizer statistics and their update count."""
        super().restore(state)
        if state.optimizer_state is not None:
            load_shared_state(self.optimizer, state.optimizer_state)
        self._counts[COUNT_FIELDS.index("applied")] = state.applied_updates

    def start(self) -> None:
        """Start every worker process."""
        # Worker processes (and the fork server) read this at start-up: glibc then serves every
        # allocation above 64 KiB with its own mapping and returns it on free, instead of
        # raising the threshold and keeping freed learning-pass buffers on the heap (~30 MB
        # less resident memory per worker). A value the user exported wins.
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
        for rank in range(self.cfg.workers):
            self._workers.append(self._spawn(rank))
        cpus = self.cfg.runtime.worker_cpus
        log.info(
            "started %d workers x %d envs (%s%s)",
            len(self._workers),
            self.cfg.envs_per_worker,
            self.cfg.runtime.start_method,
            f", pinned to CPUs {sorted(set(cpus))}" if cpus else "",
        )

    def _spawn(self, rank: int) -> Any:
        """Start worker ``rank`` with fresh envs and a local net copied from the global one."""
        cfg = self.cfg
        spec = worker_spec(
            cfg,
            self.env_spec,
            self.run_dir,
            rank,
            self._per_rank_restarts.get(rank, 0),
            self.global_step(),
            parent_pid=os.getpid(),
        )
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=run_worker,
            args=(
                spec,
                self.model,
                self.optimizer,
                writer,
                self._stop_event,
                self._lock,
                self._counts,
                cfg.runtime.lock_optimizer_step,
            ),
            name=f"a3c-worker-{rank}",
            daemon=True,
        )
        process.start()
        writer.close()  # the worker holds the only write end: its death reads as EOF here
        old = self._readers.pop(rank, None)
        if old is not None:
            old.close()
        self._readers[rank] = reader
        self._last_seen[rank] = time.monotonic()
        return process

    def supervise(self) -> str | None:
        """Restart workers that died or went silent; past ``max_restarts`` return the failure."""
        timeout = self.cfg.heartbeat_timeout
        now = time.monotonic()
        for rank, process in enumerate(self._workers):
            if process.exitcode is None and now - self._last_seen[rank] < timeout:
                continue
            if process.exitcode is None:
                reason = f"sent nothing for {now - self._last_seen[rank]:.0f} s (heartbeat)"
            elif process.exitcode < 0:
                reason = f"was killed by {signal.Signals(-process.exitcode).name}"
            else:
                reason = f"exited with code {process.exitcode}"
            _kill_group(process)
            process.join(timeout=1.0)
            # what it sent before dying still counts (an update it applied, its episodes)
            self._drain_dead(rank)
            if rank in self._tracebacks:
                reason += ":\n" + self._tracebacks.pop(rank)
            failure = self._restart_or_fail(rank, reason)
            if failure is not None:
                return failure
            self._workers[rank] = self._spawn(rank)
        return None

    def poll(self, timeout: float) -> list[Update]:
        """Every pending update (waits up to ``timeout`` for the first message)."""
        while self._readers:
            ready = mp_connection.wait(list(self._readers.values()), timeout)
            if not ready:
                break
            timeout = 0.0
            for reader in ready:
                try:
                    message = reader.recv()
                except (EOFError, OSError):  # the worker is gone; supervision restarts it
                    rank = next(r for r, conn in self._readers.items() if conn is reader)
                    self._readers.pop(rank).close()
                    continue
                self._receive(message)
        updates, self._pending = self._pending, []
        return updates

    def _receive(self, message: Message) -> None:
        self._last_seen[message.rank] = time.monotonic()
        if isinstance(message, Update):
            self._pending.append(message)
        elif isinstance(message, WorkerError):
            self._tracebacks[message.rank] = message.traceback.rstrip()
        elif isinstance(message, Ready):
            log.debug("worker %d ready (pid %d)", message.rank, message.pid)

    def _drain_dead(self, rank: int) -> None:
        """Read what a dead worker's pipe still holds, up to its end, then close it."""
        reader = self._readers.pop(rank, None)
        if reader is None:
            return
        try:
            while reader.poll(0):
                self._receive(reader.recv())
        except (EOFError, OSError):
            pass
        finally:
            reader.close()

    def snapshot(self) -> Snapshot:
        """Weights, optimizer state and update count, copied together under the step lock."""
        return take_snapshot(self.model, self.optimizer, self._lock, self._counts)

    def counts(self) -> Counts:
        """What the workers counted with their updates (read without the lock: a moment's)."""
        return counts_of(self._counts)

    def metrics(self) -> Metrics:
        """Nothing beyond the run's own figures."""
        return {}

    def stop(self, grace: float) -> list[Update]:
        """Event, then SIGTERM, then SIGKILL to each worker's process group (engines included)."""
        self._stop_event.set()
        updates: list[Update] = []
        deadline = time.monotonic() + grace
        while any(p.is_alive() for p in self._workers) and time.monotonic() < deadline:
            updates += self.poll(timeout=0.05)
        for process in self._workers:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + (2.0 if grace > 0 else 0.5)
        while any(p.is_alive() for p in self._workers) and time.monotonic() < deadline:
            updates += self.poll(timeout=0.05)
        for process in self._workers:
            if process.pid is None:
                continue
            _kill_group(process)
            process.join(timeout=1.0)
        updates += self.poll(timeout=0.0)
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        return updates

    def close(self) -> None:
        """Remove the step lock's folder (the workers are stopped by then)."""
        shutil.rmtree(self._lock_dir, ignore_errors=True)
