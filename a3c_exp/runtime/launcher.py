"""``AsyncLauncher``: starts, supervises and stops the worker processes of one run.

The main process owns everything shared: the global network and optimizer state (in shared
memory), the statistics queue, the checkpoints and the metric sinks. It stops the run at
``total_steps``, ``max_time``, ``target_reward``, a worker failure or a signal, then stops every
worker (grace period, SIGTERM, then SIGKILL to the worker's whole process group so the ViZDoom
engines go too), writes the final checkpoint and closes the sinks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

from a3c_exp.algo.module import A3CModule
from a3c_exp.checkpoint import CheckpointManager, checkpoint_payload, take_snapshot
from a3c_exp.config import TrainConfig
from a3c_exp.envs import EnvSpec
from a3c_exp.reporting import MetricsSink, RunStats
from a3c_exp.runtime.locks import FileLock
from a3c_exp.runtime.messages import Message, Ready, Update, WorkerError
from a3c_exp.runtime.worker import WorkerSpec, run_worker

log = logging.getLogger("a3c_exp")

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class RunResult:
    """How a run ended."""

    stop_reason: str  # total_steps, max_time, target_reward, interrupted, worker_failed
    exit_code: int
    checkpoint: Path | None
    summary: dict[str, Any]


def _kill_group(process: Any) -> None:
    """SIGKILL a worker's whole process group: the worker and its ViZDoom engine."""
    if process.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class _StopRequested(Exception):
    """A second signal: stop at once."""


class AsyncLauncher:
    """Runs ``cfg.workers`` asynchronous A3C workers against ``module``'s global network."""

    def __init__(
        self,
        module: A3CModule,
        optimizer: torch.optim.Optimizer,
        cfg: TrainConfig,
        env_spec: EnvSpec,
        run_dir: Path,
        sink: MetricsSink,
        stats: RunStats,
        checkpoints: CheckpointManager,
        extra_counters: dict[str, Any] | None = None,
    ):
        self.module = module
        self.optimizer = optimizer
        self.cfg = cfg
        self.env_spec = env_spec
        self.run_dir = Path(run_dir)
        self.sink = sink
        self.stats = stats
        self.checkpoints = checkpoints
        self.extra_counters = extra_counters or {}
        self._ctx = mp.get_context(cfg.start_method)
        if cfg.start_method == "forkserver":
            # The server imports torch and the worker code once; each worker is then a cheap fork
            # of it instead of a fresh interpreter importing everything again.
            self._ctx.set_forkserver_preload(["a3c_exp.runtime.worker", "a3c_exp.envs.vizdoom_env"])
        self._readers: dict[int, Any] = {}  # rank -> read end of that worker's stats pipe
        self._stop_event = self._ctx.Event()
        # flock, not multiprocessing.Lock: a worker killed inside the step must not freeze the
        # others (the kernel releases the lock of a dead process). Snapshots always take it;
        # workers take it for their step unless lock_optimizer_step=false.
        self._optimizer_lock = FileLock(self.run_dir / ".optimizer.lock")
        # optimizer steps applied by all workers, counted under the lock where the step happens
        self._applied_updates = torch.tensor(int(stats.updates), dtype=torch.int64).share_memory_()
        self._workers: list[Any] = []
        self.stats.learning_rate = float(optimizer.param_groups[0]["lr"])
        self._signals = 0
        self._failure: str | None = None
        self._restarts: dict[int, int] = {}
        self._last_seen: dict[int, float] = {}
        self._tracebacks: dict[int, str] = {}
        self._consecutive_skips: dict[int, int] = {}
        self._numerical_failure = False

    # ----------------------------------------------------------------------------- lifecycle
    def run(self) -> RunResult:
        """Train until a stop condition; always stop every worker and close with a checkpoint."""
        previous_handlers = self._install_signal_handlers()
        stop_reason = "worker_failed"
        forced = False
        try:
            self._start_workers()
            stop_reason = self._supervise()
        except _StopRequested:
            stop_reason, forced = "interrupted", True
        finally:
            try:
                self._stop_workers(grace=0.0 if forced else self.cfg.shutdown_grace)
            except _StopRequested:  # a second signal while stopping: kill now
                forced = True
                self._stop_workers(grace=0.0)
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
        return self._finish(
            stop_reason, write_checkpoint=not forced and not self._numerical_failure
        )

    def _install_signal_handlers(self) -> dict[int, Any]:
        def handle(signum: int, frame: Any) -> None:
            self._signals += 1
            if self._signals == 1:
                log.warning(
                    "%s received: stopping workers (again to stop at once)",
                    signal.Signals(signum).name,
                )
            else:
                raise _StopRequested()

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
        return previous

    def _start_workers(self) -> None:
        # Worker processes (and the fork server) read this at start-up: glibc then serves every
        # allocation above 64 KiB with its own mapping and returns it on free, instead of
        # raising the threshold and keeping freed learning-pass buffers on the heap (~30 MB
        # less resident memory per worker). A value the user exported wins.
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
        for rank in range(self.cfg.workers):
            self._workers.append(self._spawn(rank))
        cpus = self.cfg.worker_cpus
        log.info(
            "started %d workers x %d envs (%s%s)",
            len(self._workers),
            self.cfg.envs_per_worker,
            self.cfg.start_method,
            f", pinned to CPUs {sorted(set(cpus))}" if cpus else "",
        )

    def _spawn(self, rank: int) -> Any:
        """Start worker ``rank`` with a fresh env and a local net copied from the global one."""
        restarts = self._restarts.get(rank, 0)
        cfg = self.cfg
        spec = WorkerSpec(
            rank=rank,
            # resumed runs and restarted workers get fresh episodes, not a replay
            seed=cfg.seed + rank + self.stats.global_step + 7919 * restarts,
            env=cfg.env,
            model=cfg.model,
            loss=cfg.loss,
            rollout_len=cfg.rollout_len,
            envs_per_worker=cfg.envs_per_worker,
            obs_shape=self.env_spec.obs_shape,
            n_actions=self.env_spec.n_actions,
            workdir=str(self.run_dir / ".vizdoom"),
            parent_pid=os.getpid(),
            video_every=cfg.video_every,
            video_dir=str(self.run_dir / "videos"),
            cpu=cfg.worker_cpus[rank % len(cfg.worker_cpus)] if cfg.worker_cpus else None,
        )
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=run_worker,
            args=(
                spec,
                self.module.net,
                self.optimizer,
                writer,
                self._stop_event,
                self._optimizer_lock if cfg.lock_optimizer_step else None,
                self._applied_updates,
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

    def _check_workers(self) -> None:
        """Restart workers that died or went silent; past ``max_restarts`` fail the run."""
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
            restarts = self._restarts.get(rank, 0)
            if restarts >= self.cfg.max_restarts:
                self._failure = (
                    f"worker {rank} {reason}\n(restart limit max_restarts="
                    f"{self.cfg.max_restarts} reached)"
                )
                return
            self._restarts[rank] = restarts + 1
            self.stats.worker_restarts += 1
            log.warning(
                "worker %d %s; restarting it (%d/%d)",
                rank,
                reason,
                restarts + 1,
                self.cfg.max_restarts,
            )
            self._workers[rank] = self._spawn(rank)

    def _supervise(self) -> str:
        cfg = self.cfg
        log_every = cfg.log_every
        next_log = time.monotonic() + log_every
        every = cfg.checkpoint_every
        next_checkpoint = (self.stats.global_step // every + 1) * every if every else None
        while True:
            self._drain(timeout=0.05)
            reason = self._stop_reason()
            if time.monotonic() >= next_log or reason:
                self.stats.updates = int(self._applied_updates)
                self.sink.log(self.stats.flush())
                next_log = time.monotonic() + log_every
            if reason:
                return reason
            if next_checkpoint is not None and self.stats.global_step >= next_checkpoint:
                self._save_checkpoint(periodic=True)
                next_checkpoint = (self.stats.global_step // every + 1) * every

    def _stop_reason(self) -> str | None:
        cfg, stats = self.cfg, self.stats
        if self._signals:
            return "interrupted"
        if self._failure is None:
            self._check_workers()
        if self._failure is not None:
            return "worker_failed"
        if stats.global_step >= cfg.total_steps:
            return "total_steps"
        if cfg.max_time is not None and stats.elapsed >= cfg.max_time:
            return "max_time"
        if (
            cfg.target_reward is not None
            and len(stats.recent_rewards) == stats.recent_rewards.maxlen
            and stats.mean_reward >= cfg.target_reward
        ):
            return "target_reward"
        return None

    def _drain(self, timeout: float) -> None:
        """Fold every pending worker message into the stats (waits up to ``timeout`` for one)."""
        while self._readers:
            ready = mp_connection.wait(list(self._readers.values()), timeout)
            if not ready:
                return
            timeout = 0.0
            for reader in ready:
                try:
                    message = reader.recv()
                except (EOFError, OSError):  # the worker is gone; supervision restarts it
                    rank = next(r for r, conn in self._readers.items() if conn is reader)
                    self._readers.pop(rank).close()
                    continue
                self._handle(message)

    def _drain_dead(self, rank: int) -> None:
        """Read what a dead worker's pipe still holds, up to its end, then close it."""
        reader = self._readers.pop(rank, None)
        if reader is None:
            return
        try:
            while reader.poll(0):
                self._handle(reader.recv())
        except (EOFError, OSError):
            pass
        finally:
            reader.close()

    def _handle(self, message: Message) -> None:
        self._last_seen[message.rank] = time.monotonic()
        if isinstance(message, Update):
            self.stats.add(message)
            skips = self._consecutive_skips.get(message.rank, 0) + 1 if message.skipped else 0
            self._consecutive_skips[message.rank] = skips
            if skips >= self.cfg.max_skipped_updates and not self._failure:
                self._failure = (
                    f"worker {message.rank}: {skips} consecutive updates had a NaN or inf loss "
                    "or gradient and were skipped (max_skipped_updates); the last checkpoint "
                    "written before is kept"
                )
                self._numerical_failure = True
            for path in message.videos:
                self.sink.log_video(path, self.stats.global_step)
        elif isinstance(message, WorkerError):
            self._tracebacks[message.rank] = message.traceback.rstrip()
        elif isinstance(message, Ready):
            log.debug("worker %d ready (pid %d)", message.rank, message.pid)

    def _stop_workers(self, grace: float) -> None:
        """Event, then SIGTERM, then SIGKILL to each worker's process group (engines included)."""
        self._stop_event.set()
        deadline = time.monotonic() + grace
        while any(p.is_alive() for p in self._workers) and time.monotonic() < deadline:
            self._drain(timeout=0.05)
        for process in self._workers:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + (2.0 if grace > 0 else 0.5)
        while any(p.is_alive() for p in self._workers) and time.monotonic() < deadline:
            self._drain(timeout=0.05)
        for process in self._workers:
            if process.pid is None:
                continue
            _kill_group(process)
            process.join(timeout=1.0)
        self._drain(timeout=0.0)
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    # ----------------------------------------------------------------------------- closing
    def _counters(self) -> dict[str, Any]:
        return {**self.stats.counters(), **self.extra_counters}

    def _save_checkpoint(self, periodic: bool) -> Path:
        """Snapshot weights, optimizer and update count together, then write every file of it."""
        snapshot = take_snapshot(
            self.module, self.optimizer, self._optimizer_lock, lambda: int(self._applied_updates)
        )
        counters = self._counters()
        payload = checkpoint_payload(self.module, snapshot, counters)
        return self.checkpoints.save(payload, counters["global_step"], periodic=periodic)

    def _finish(self, stop_reason: str, write_checkpoint: bool) -> RunResult:
        exit_code = {
            "interrupted": EXIT_INTERRUPTED,
            "worker_failed": EXIT_FAILED,
        }.get(stop_reason, EXIT_OK)
        if self._failure:
            log.error("%s", self._failure)
        checkpoint = None
        if write_checkpoint:
            checkpoint = self._save_checkpoint(periodic=False)
            log.info("checkpoint: %s", checkpoint)
        self.stats.updates = int(self._applied_updates)
        summary = {**self.stats.summary(), "stop_reason": stop_reason}
        self.sink.summary(summary)
        return RunResult(stop_reason, exit_code, checkpoint, summary)
