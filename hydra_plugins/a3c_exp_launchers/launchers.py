"""Sweep launchers built on hydra-submitit-launcher, for jobs that start their own workers.

The stock launchers fall short in two ways that matter for A3C jobs:

* submitit's local executor starts every job at once (only its Slurm executor knows
  ``array_parallelism``): 16 jobs of N workers each on 2 cores. ``BoundedLocalLauncher``
  submits the jobs one by one and keeps at most ``array_parallelism`` running.
* they build one executor from the sweep's base config, so ``cpus_per_task: ${workers}`` takes
  the default ``workers`` even in a sweep over ``workers``. Both launchers here resolve the
  executor parameters in each job's own config (Slurm jobs with equal parameters still go out
  as one job array).

Jobs stay isolated: a job that fails, or dies without a result, becomes a failed ``JobReturn``
and the others run on. A local job's controller runs in its own session, so Ctrl-C reaches only
the sweep; the sweep then stops its running jobs with SIGTERM (a job stops its workers and
writes its final checkpoint), starts no more and exits 130. A second Ctrl-C sends a second
SIGTERM, which a job takes as "stop at once". Interrupted Slurm sweeps cancel their jobs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as stock
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import DictConfig, OmegaConf, open_dict

from a3c_exp.sweep import completed_record

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130
"""Exit code of an interrupted sweep, as of an interrupted run (a3c_exp.runtime.launcher)."""

_INIT_KEYS = ("submitit_folder", "max_num_timeout")
"""Launcher keys that configure the executor itself rather than each job's resources."""


class _PerJobParams:
    """Shared part: per-job executor parameters, executors, and results that never raise.

    A mixin for submitit's launchers (a plain class, so Hydra does not list it as a launcher).
    """

    _EXECUTOR: str
    hydra_context: Any
    config: DictConfig | None
    _OWN_KEYS: tuple[str, ...] = ()
    """Keys of our configs that are not submitit parameters."""

    def _job_config(self, overrides: Sequence[str], idx: int) -> DictConfig:
        """The job's own config, its number set (so ``hydra.sweep.subdir`` resolves)."""
        assert self.hydra_context is not None and self.config is not None
        job_cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(job_cfg.hydra.job):
            job_cfg.hydra.job.num = idx
        return job_cfg

    def _job_params(self, job_cfg: DictConfig) -> dict[str, Any]:
        """The launcher parameters resolved in the job's own config (``${workers}`` included)."""
        params = OmegaConf.to_container(job_cfg.hydra.launcher, resolve=True)
        assert isinstance(params, dict)
        for key in ("_target_", *self._OWN_KEYS):
            params.pop(key, None)
        return params

    def job_dir(self, overrides: Sequence[str], idx: int) -> Path:
        """Where job ``idx`` with these overrides writes its outputs."""
        return output_dir(self._job_config(overrides, idx))

    def _sweep_dir(self) -> Path:
        """The sweep directory, created (with ``hydra.sweep.mode``) if missing."""
        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            sweep_dir.mkdir(parents=True, exist_ok=True)
            if "mode" in self.config.hydra.sweep:
                os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
            log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {sweep_dir}")
        return sweep_dir

    def _prepare_job(
        self, overrides: Sequence[str], idx: int
    ) -> tuple[tuple[Any, ...], dict[str, Any], JobReturn | None]:
        """(arguments of __call__, executor parameters, the result of a finished earlier run).

        The last is not None when the job's directory holds a completed record of a job with
        the same overrides: a sweep run again over its own directory does not redo it.
        """
        self._sweep_dir()
        job_cfg = self._job_config(overrides, idx)
        done = completed_result(output_dir(job_cfg), overrides)
        log.info(
            f"\t#{idx} : {' '.join(filter_overrides(overrides))}" + (" (done)" if done else "")
        )
        args = (list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}")
        return (*args, Singleton.get_state()), self._job_params(job_cfg), done

    def start_job(self, overrides: Sequence[str], idx: int) -> Any:
        """Submit one job now; a handle with ``done()``, for ``job_result`` (sweepers' use)."""
        args, params, done = self._prepare_job(overrides, idx)
        if done is not None:
            return _Finished(done)
        return self._submit(params, args)

    def _submit(self, params: dict[str, Any], args: tuple[Any, ...]) -> Any:
        return self._executor(params).submit(self, *args)

    def _executor(self, params: dict[str, Any]) -> Any:
        """A submitit executor for jobs with these parameters (as the stock launcher builds it)."""
        import submitit

        init = {"folder": params["submitit_folder"]}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params["max_num_timeout"]
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        generic = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                key if key in generic else f"{self._EXECUTOR}_{key}": value
                for key, value in params.items()
                if key not in _INIT_KEYS
            }
        )
        return executor

    def job_result(self, job: Any, overrides: Sequence[str]) -> JobReturn:
        """The ``JobReturn`` of a job that is done (failed if it left no result)."""
        return self._job_return(job, overrides)

    @staticmethod
    def _job_return(job: Any, overrides: Sequence[str]) -> JobReturn:
        """The job's ``JobReturn``; a job that left no result (killed, crashed) counts as failed."""
        try:
            return job.results()[0]
        except Exception as err:
            return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=err)


class BoundedLocalLauncher(_PerJobParams, stock.LocalLauncher):
    """Local sweep jobs, each its own process tree, at most ``array_parallelism`` at a time."""

    _OWN_KEYS = ("array_parallelism", "poll_s")

    def __init__(self, array_parallelism: int | None = None, poll_s: float = 0.2, **params: Any):
        super().__init__(**params)
        if array_parallelism is not None and array_parallelism < 1:
            raise ValueError(
                f"hydra.launcher.array_parallelism={array_parallelism}: must be >= 1 or null"
            )
        self.array_parallelism = array_parallelism
        self.poll_s = poll_s

    def parallel_limit(self, cpus_per_task: Sequence[int | None]) -> int:
        """``array_parallelism``, or CPUs // the largest ``cpus_per_task`` (at least 1)."""
        if self.array_parallelism is not None:
            return self.array_parallelism
        from a3c_exp.runtime.cpus import available_cpus

        return max(1, available_cpus() // max(c or 1 for c in cpus_per_task))

    def job_slots(self, overrides: Sequence[str]) -> int:
        """How many jobs like this one may run at once (a sweeper keeps them all busy)."""
        _, params, _ = self._prepare_job(overrides, 0)
        return self.parallel_limit([params.get("cpus_per_task")])

    def _submit(self, params: dict[str, Any], args: tuple[Any, ...]) -> Any:
        with _controllers_in_own_session():
            return self._executor(params).submit(self, *args)

    def stop_jobs(self, jobs: Sequence[Any]) -> None:
        """SIGTERM the running jobs (each stops its workers, checkpoints) and wait for them."""
        _stop_local_jobs([job for job in jobs if not isinstance(job, _Finished)], self.poll_s)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Start jobs while fewer than the limit run; return their results in sweep order."""
        jobs = [
            self._prepare_job(overrides, idx)
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx)
        ]
        limit = self.parallel_limit([params.get("cpus_per_task") for _, params, _ in jobs])
        results: list[JobReturn | None] = [done for _, _, done in jobs]
        pending = [index for index, result in enumerate(results) if result is None]
        log.info(f"at most {limit} of {len(pending)} jobs at a time")
        running: dict[int, Any] = {}
        with interrupt_on_sigterm():
            try:
                while pending or running:
                    while pending and len(running) < limit:
                        index = pending.pop(0)
                        args, params, _ = jobs[index]
                        running[index] = self._submit(params, args)
                    time.sleep(self.poll_s)
                    for index in [i for i, job in running.items() if job.done()]:
                        results[index] = self._job_return(running.pop(index), job_overrides[index])
            except KeyboardInterrupt:
                log.warning(f"interrupted: stopping {len(running)} running jobs, skipping the rest")
                self.stop_jobs(list(running.values()))
                sys.exit(EXIT_INTERRUPTED)
        return [r for r in results if r is not None]


class PerJobSlurmLauncher(_PerJobParams, stock.SlurmLauncher):
    """Slurm sweep jobs whose resources come from each job's config (one array per set)."""

    def job_slots(self, overrides: Sequence[str]) -> int:
        """Jobs of the sweep that may run at once: ``array_parallelism``."""
        _, params, _ = self._prepare_job(overrides, 0)
        return max(1, int(params.get("array_parallelism") or 1))

    def stop_jobs(self, jobs: Sequence[Any]) -> None:
        """Cancel the jobs (Slurm sends them SIGTERM, then SIGKILL after its grace time)."""
        for job in jobs:
            if not isinstance(job, _Finished):
                job.cancel(check=False)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Submit one job array per distinct resource set; return results in sweep order."""
        jobs = [
            self._prepare_job(overrides, idx)
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx)
        ]
        groups: dict[str, list[int]] = {}
        submitted: list[Any] = [None] * len(jobs)
        for index, (_, params, done) in enumerate(jobs):
            if done is not None:
                submitted[index] = _Finished(done)
            else:
                groups.setdefault(json.dumps(params, sort_keys=True), []).append(index)
        for key, indices in groups.items():
            array = self._executor(json.loads(key)).map_array(
                self, *zip(*(jobs[i][0] for i in indices), strict=True)
            )
            for index, job in zip(indices, array, strict=True):
                submitted[index] = job
        try:
            return [self._job_return(j, o) for j, o in zip(submitted, job_overrides, strict=True)]
        except KeyboardInterrupt:
            log.warning("interrupted: cancelling the sweep's Slurm jobs")
            self.stop_jobs(submitted)
            sys.exit(EXIT_INTERRUPTED)


class _Finished:
    """A job that need not run: its directory holds a completed record of the same job."""

    def __init__(self, result: JobReturn):
        self.result = result

    def done(self) -> bool:
        return True


def output_dir(job_cfg: DictConfig) -> Path:
    """The output directory of a job, from its own config (its number set)."""
    return Path(str(job_cfg.hydra.sweep.dir)) / str(job_cfg.hydra.sweep.subdir)


def completed_result(job_dir: Path, overrides: Sequence[str]) -> JobReturn | None:
    """The result of a completed earlier run of this job in ``job_dir``, or None."""
    record = completed_record(job_dir, filter_overrides(overrides))
    if record is None:
        return None
    return JobReturn(
        overrides=list(overrides),
        status=JobStatus.COMPLETED,
        _return_value=record.get("objective"),
    )


@contextlib.contextmanager
def _controllers_in_own_session() -> Iterator[None]:
    """Start submitit's local job controllers in a new session, out of reach of the terminal.

    A terminal's Ctrl-C goes to its whole foreground process group; a controller hit by it
    sends the job SIGINT and, a second later, SIGKILL, which leaves the job no time to stop
    its workers. submitit's ``start_controller`` takes no Popen options, hence the swap.
    """
    from submitit.local import local

    popen = local.subprocess.Popen
    local.subprocess.Popen = functools.partial(popen, start_new_session=True)
    try:
        yield
    finally:
        local.subprocess.Popen = popen


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM to the sweep like Ctrl-C, so running jobs are stopped, not orphaned."""

    def handle(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_local_jobs(jobs: list[Any], poll_s: float, resend_s: float = 20.0) -> None:
    """SIGTERM to each controller (it forwards it to its job); wait until all have exited.

    Another Ctrl-C while waiting sends another SIGTERM: the jobs then stop at once. So does a
    job still running ``resend_s`` after its SIGTERM: one that was still starting when the
    SIGTERM came had no handler of ours yet, and submitit's own ignores SIGTERM (seen once in
    CI: the job trained on for 11 minutes).
    """

    def terminate() -> None:
        for job in jobs:
            if job.done():
                continue
            with contextlib.suppress(ProcessLookupError):  # LocalJob.cancel would send SIGINT
                job._process.send_signal(signal.SIGTERM)

    terminate()
    sent = time.monotonic()
    while not all(job.done() for job in jobs):
        try:
            time.sleep(poll_s)
        except KeyboardInterrupt:
            terminate()
            sent = time.monotonic()
        if time.monotonic() - sent >= resend_s:
            log.warning(f"jobs still running {resend_s:g} s after SIGTERM: sending another")
            terminate()
            sent = time.monotonic()
