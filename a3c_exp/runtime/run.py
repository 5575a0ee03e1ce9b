"""``Run``: the owner of one training run, whatever backend runs its workers.

The run alone owns the stop decision (``total_steps``, ``max_time``, ``target_reward``, a
failure, a signal, a sweep's pruner), the statistics, the metric sinks and the checkpoint
files. It drives a ``WorkerPool`` (``a3c_exp.runtime.pool``) and knows it only through that
interface. On every
exit path the pool's workers are stopped, and the final checkpoint is written from one
consistent snapshot unless the weights are not to be trusted.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a3c_exp.checkpoint import CheckpointManager, Counts, checkpoint_payload
from a3c_exp.config import TrainConfig
from a3c_exp.files import fault_line, machine_fault
from a3c_exp.messages import Update
from a3c_exp.reporting import MetricsSink, RunStats
from a3c_exp.runtime.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from a3c_exp.runtime.pool import PoolError, WorkerPool
from a3c_exp.runtime.trial import TrialReporter

log = logging.getLogger("a3c_exp")


@dataclass
class RunResult:
    """How a run ended."""

    # total_steps, max_time, target_reward, pruned, interrupted, worker_failed, machine_fault
    stop_reason: str
    exit_code: int
    checkpoint: Path | None
    summary: dict[str, Any]
    # machine_fault: one line naming the cause, the file and the last good checkpoint
    fault: str | None = None


class _StopRequested(Exception):
    """A second signal: stop at once."""


class Run:
    """Trains with the workers of ``pool`` until a stop condition; reports and checkpoints."""

    def __init__(
        self,
        cfg: TrainConfig,
        pool: WorkerPool,
        sink: MetricsSink,
        stats: RunStats,
        checkpoints: CheckpointManager,
        extra_counters: dict[str, Any] | None = None,
        run_dir: Path | None = None,
    ):
        self.cfg = cfg
        self.stats = stats
        self.pool = pool
        self.sink = sink
        self.checkpoints = checkpoints
        self.extra_counters = extra_counters or {}
        self.stats.learning_rate = cfg.optim.lr  # the value in force, as the config says
        self._restarts_before = stats.worker_restarts
        self._signals = 0
        self._failure: str | None = None
        self._consecutive_skips: dict[int, int] = {}
        self._numerical_failure = False
        self.run_dir = run_dir
        self._machine_fault: OSError | None = None  # a write the machine made fail
        self.trial = (
            TrialReporter(run_dir, cfg.trial_report_every, stats.global_step)
            if cfg.trial_report_every and run_dir is not None
            else None
        )

    def run(self) -> RunResult:
        """Train until a stop condition; always stop every worker and close with a checkpoint."""
        previous_handlers = self._install_signal_handlers()
        stop_reason = "worker_failed"
        forced = False
        try:
            self.pool.start()
            stop_reason = self._loop()
        except _StopRequested:
            stop_reason, forced = "interrupted", True
        finally:
            try:
                self._handle_all(self.pool.stop(0.0 if forced else self.cfg.shutdown_grace))
            except _StopRequested:  # a second signal while stopping: stop now
                forced = True
                self._handle_all(self.pool.stop(0.0))
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
        # a forced stop may have killed a worker inside its optimizer step: no checkpoint then;
        # after a write the machine refused, the last good checkpoint is kept as it is
        write = not forced and not self._numerical_failure and self._machine_fault is None
        return self._finish(stop_reason, write_checkpoint=write)

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

    def _loop(self) -> str:
        cfg = self.cfg
        next_log = time.monotonic() + cfg.log_every
        every = cfg.checkpoint_every
        next_checkpoint = (self.stats.global_step // every + 1) * every if every else None
        while True:
            self._handle_all(self.pool.poll(timeout=0.05))
            try:
                reason = self._stop_reason()  # a sweep's trial report is written here
                if time.monotonic() >= next_log or reason:
                    self._report()
                    next_log = time.monotonic() + cfg.log_every
                if reason:
                    return reason
                if next_checkpoint is not None and self.stats.global_step >= next_checkpoint:
                    self._save_checkpoint(periodic=True)
                    next_checkpoint = (self.stats.global_step // every + 1) * every
            except OSError as err:
                if not machine_fault(err):
                    self._failure = f"periodic checkpoint not written: {err}"
                    return "worker_failed"
                self._machine_fault = err  # disk full, read-only, gone: the run cannot go on
                return "machine_fault"
            except PoolError as err:  # the parameter server is lost: the run ends
                self._failure = f"periodic checkpoint not written: {err}"
                return "worker_failed"

    def _report(self) -> None:
        self._sync_counters()
        self.sink.log({**self.stats.flush(), **self.pool.metrics()})

    def _sync_counters(self, counts: Counts | None = None) -> None:
        """Totals from the pool's counts (counted where updates were applied; ``counts``: those
        of a snapshot), and restarts."""
        self.stats.worker_restarts = self._restarts_before + self.pool.restarts
        if counts is not None:
            self.stats.set_counts(counts)
            return
        with contextlib.suppress(PoolError):  # the totals stay the last ones known
            self.stats.set_counts(self.pool.counts())

    def _stop_reason(self) -> str | None:
        cfg, stats = self.cfg, self.stats
        if self._signals:
            return "interrupted"
        if self._failure is None:
            self._failure = self.pool.supervise()
        if self._failure is not None:
            return "worker_failed"
        if self.trial is not None:
            if stats.global_step >= self.trial.next_milestone:
                self.trial.report(stats.global_step, stats.summary().get(cfg.objective))
            if self.trial.pruned():
                return "pruned"
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

    def _handle_all(self, updates: list[Update]) -> None:
        for update in updates:
            self._handle(update)
        if updates:
            self._sync_counters()

    def _handle(self, update: Update) -> None:
        self.stats.add(update)
        skips = self._consecutive_skips.get(update.rank, 0) + 1 if update.skipped else 0
        self._consecutive_skips[update.rank] = skips
        if skips >= self.cfg.max_skipped_updates and not self._failure:
            self._failure = (
                f"worker {update.rank}: {skips} consecutive updates had a NaN or inf loss "
                "or gradient and were skipped (max_skipped_updates); the last checkpoint "
                "written before is kept"
            )
            self._numerical_failure = True
        for path in update.videos:
            if Path(path).exists():  # a worker on another node writes its videos there
                self.sink.log_video(path, self.stats.global_step)
        for note in update.notes:
            log.warning("worker %d: %s", update.rank, note)

    # ----------------------------------------------------------------------------- closing
    def _save_checkpoint(self, periodic: bool) -> Path:
        """Snapshot weights, optimizer and update count together, then write every file of it."""
        snapshot = self.pool.snapshot()
        self._sync_counters(snapshot.counts)  # the counters of the weights' own instant
        counters = {**self.stats.counters(), **self.extra_counters}
        payload = checkpoint_payload(self.pool.hparams, snapshot, counters)
        return self.checkpoints.save(payload, counters["global_step"], periodic=periodic)

    def _finish(self, stop_reason: str, write_checkpoint: bool) -> RunResult:
        exit_code = {
            "interrupted": EXIT_INTERRUPTED,
            "worker_failed": EXIT_FAILED,
            "machine_fault": EXIT_FAILED,
        }.get(stop_reason, EXIT_OK)
        if self._failure:
            log.error("%s", self._failure)
        checkpoint = None
        if write_checkpoint:
            try:
                checkpoint = self._save_checkpoint(periodic=False)
                log.info("checkpoint: %s", checkpoint)
            except PoolError as err:
                exit_code = EXIT_FAILED if exit_code == EXIT_OK else exit_code
                log.error("final checkpoint not written: %s (the last one written is kept)", err)
            except OSError as err:
                if not machine_fault(err):
                    raise
                self._machine_fault = err
                stop_reason, exit_code = "machine_fault", EXIT_FAILED
        self._sync_counters()
        summary = {**self.stats.summary(), "stop_reason": stop_reason}
        try:
            self.sink.summary(summary)
        except OSError as err:
            if not machine_fault(err):
                raise
            self._machine_fault = self._machine_fault or err
            stop_reason, exit_code = "machine_fault", EXIT_FAILED
            summary["stop_reason"] = stop_reason
        return RunResult(stop_reason, exit_code, checkpoint, summary, self.fault_line())

    def fault_line(self) -> str | None:
        """The machine fault that stopped the run, in one line with the last good checkpoint;
        None if there was none."""
        if self._machine_fault is None:
            return None
        return with_last_checkpoint(
            fault_line(self._machine_fault, self.run_dir), self.checkpoints.last_saved
        )


def with_last_checkpoint(line: str, last_saved: tuple[Path, int] | None) -> str:
    """``<line>; last good checkpoint: <path> at <step> steps`` (or that there is none)."""
    if last_saved is None:
        return f"{line}; no checkpoint written yet"
    path, step = last_saved
    if not path.is_file():  # its folder was removed under the run
        return f"{line}; no checkpoint left (the last, {path} at {step:,} steps, is gone)"
    return f"{line}; last good checkpoint: {path} at {step:,} steps"
