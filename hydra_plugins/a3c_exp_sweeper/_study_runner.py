"""The search of ``hydra/sweeper=a3c_optuna``: ask/tell per free slot, pruning, seeds, resume.

One process owns the study (this one); jobs never open it. A trial is ``seeds_per_trial``
training jobs that differ only in ``seed``. The runner keeps every job slot busy: as soon as a
job ends (or its trial is pruned) the next job starts, asking the study for a new trial when
the current one's seeds are all under way. Jobs report their running objective at fixed env
steps (``a3c_exp.runtime.trial``); the runner reports each milestone's value over the trial's
seeds to the trial, asks the pruner, and asks the jobs of a pruned trial to stop.

Launchers that can start one job and be asked later whether it is done (``start_job``,
``job_result``, ``stop_jobs``: both of this project's launchers) get a job per free slot.
Others (Hydra's basic launcher, hydra-ray-launcher) get batches of ``n_jobs`` through their
``launch``, while a thread watches the reports so pruning still acts during a batch.

Resume: the study lives in ``<sweep dir>/optuna.db``. Run the same command with
``hydra.sweep.dir=<that sweep>`` and the finished trials are kept, a trial that was cut short
is marked failed (user attribute ``interrupted``) and not counted, job numbers go on after the
highest in the directory, and the study goes on until ``n_trials`` trials have finished.

Faults of the machine: a job that stopped because it could not write (no space, a read-only or
vanished directory; its record says ``infrastructure``) fails its trial with the user attribute
``infrastructure``, which does not count either, so the study samples another trial in its
place; ``MAX_INFRASTRUCTURE_FAILURES`` such trials in a row stop the sweep in one line instead
of spending its budget on jobs that cannot run. A study that cannot be written (its database on
a full disk) stops the sweep as Ctrl-C does, in one line; the same command resumes it once the
cause is gone.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn
from optuna.trial import TrialState

from a3c_exp.files import machine_fault
from a3c_exp.reporting.seed_stats import aggregate
from a3c_exp.runtime.trial import read_reports, request_prune
from a3c_exp.sweep import summarise_sweep
from hydra_plugins.a3c_exp_launchers.launchers import interrupt_on_sigterm

from ._search_space import SearchSpace
from ._slots import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    INFRASTRUCTURE,
    STUDY_WRITE_ERRORS,
    SweepStopped,
    job_outcome,
    study_fault_line,
    write_schedule,
)

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
"""User attribute of a trial cut short by a stop of the sweep: failed, and not counted."""
MAX_INFRASTRUCTURE_FAILURES = 3
"""Trials failed in a row by faults of the machine after which the sweep stops."""


@dataclass
class Job:
    """One training job of a trial: its number, seed, overrides and, once started, a handle."""

    idx: int
    trial: int
    seed: int
    overrides: list[str]
    job_dir: Path
    handle: Any = None
    started_at: float | None = None
    ended_at: float | None = None
    status: str | None = None  # completed, pruned, failed, ... (from the job's record)
    value: float | None = None

    @property
    def done(self) -> bool:
        return self.ended_at is not None


@dataclass
class TrialRun:
    """A trial in flight: its jobs and the next milestone to report."""

    trial: optuna.Trial
    jobs: list[Job]
    next_milestone: int
    pruned: bool = False
    values: list[float] = field(default_factory=list)


@dataclass
class StudySettings:
    """The sweeper's config, checked, with the values derived from the training config."""

    n_trials: int
    seeds: list[int]
    aggregate: str
    report_every: int | None  # env steps between reports; None: no reports, no pruning
    total_steps: int
    poll_s: float
    # the study's first trials run their whole budget, whatever the pruner says: the sampler's
    # random startup trials, from whose full curves its model and the pruner's median start
    full_trials: int = 0


class StudyRunner:
    """Runs one study to ``n_trials`` finished trials with the given launcher."""

    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace,
        settings: StudySettings,
        launcher: Any,
        sweep_dir: Path,
        first_job: int,
        slots: int,
    ):
        self.study = study
        self.space = space
        self.settings = settings
        self.launcher = launcher
        self.sweep_dir = sweep_dir
        self.next_job = first_job
        self.slots = slots
        self.queue: deque[Job] = deque()  # jobs of asked trials, not started yet
        self.running: list[Job] = []
        self.trials: dict[int, TrialRun] = {}
        self.jobs: list[Job] = []
        self._lock = threading.RLock()  # the study and the bookkeeping, in batch mode
        self.infrastructure_in_a_row = 0  # trials failed in a row by faults of the machine
        self.last_fault = ""

    # ------------------------------------------------------------------------------ counting
    def finished_trials(self) -> int:
        """Trials that count towards ``n_trials``: completed, pruned, failed (not interrupted
        and not by a fault of the machine)."""
        trials = self.study.get_trials(deepcopy=False)
        return sum(
            t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (
                t.state == TrialState.FAIL
                and not t.user_attrs.get(INTERRUPTED)
                and not t.user_attrs.get(INFRASTRUCTURE)
            )
            for t in trials
        )

    def _more_trials_wanted(self) -> bool:
        return self.finished_trials() + len(self.trials) < self.settings.n_trials

    # ------------------------------------------------------------------------------ asking
    def _ask(self) -> None:
        """Ask the study for a trial and queue its jobs, one per seed."""
        trial = self.study.ask(self.space.distributions)
        params = trial.params
        jobs = []
        for seed in self.settings.seeds:
            overrides = [*self.space.overrides(params), f"seed={seed}", f"trial={trial.number}"]
            if self.settings.report_every is not None:
                overrides.append(f"trial_report_every={self.settings.report_every}")
            idx = self.next_job
            self.next_job += 1
            jobs.append(Job(idx, trial.number, seed, overrides, self._job_dir(overrides, idx)))
        trial.set_user_attr("jobs", [job.idx for job in jobs])
        trial.set_user_attr("seeds", self.settings.seeds)
        first = self.settings.report_every or 0
        self.trials[trial.number] = TrialRun(trial, jobs, next_milestone=first)
        self.queue.extend(jobs)
        self.jobs.extend(jobs)
        log.info(f"trial {trial.number}: jobs {[j.idx for j in jobs]}: {self._describe(params)}")

    def _job_dir(self, overrides: list[str], idx: int) -> Path:
        if hasattr(self.launcher, "job_dir"):
            return Path(self.launcher.job_dir(overrides, idx))
        return self.sweep_dir / str(idx)

    @staticmethod
    def _describe(params: dict[str, Any]) -> str:
        return " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
        )

    # ------------------------------------------------------------------------------ running
    def run(self) -> None:
        """Run trials until ``n_trials`` have finished; Ctrl-C or SIGTERM: stop jobs, exit 130;
        a study that cannot be written or a machine that keeps failing jobs: stop jobs, one
        line, exit 1."""
        try:
            with interrupt_on_sigterm():  # a SIGTERM stops the sweep as Ctrl-C does
                try:
                    if hasattr(self.launcher, "start_job"):
                        self._run_per_slot()
                    else:
                        self._run_in_batches()
                except STUDY_WRITE_ERRORS as err:
                    if isinstance(err, OSError) and not machine_fault(err):
                        raise
                    raise SweepStopped(study_fault_line(err, self.sweep_dir)) from None
        except SweepStopped as stopped:
            self._stop_all(EXIT_FAILED, str(stopped))
        except (KeyboardInterrupt, SystemExit) as stop:
            code = stop.code if isinstance(stop, SystemExit) else EXIT_INTERRUPTED
            self._stop_all(code, None, interrupted=isinstance(stop, KeyboardInterrupt))
        self.write_schedule()

    def _stop_all(self, code: int, line: str | None, interrupted: bool = False) -> None:
        """Stop the running jobs, record what can be recorded, print ``line``, exit ``code``."""
        if (interrupted or line) and hasattr(self.launcher, "stop_jobs") and self.running:
            log.warning(f"stopping {len(self.running)} running jobs")
            self.launcher.stop_jobs([job.handle for job in self.running])
        for record in (self._mark_interrupted, self.write_schedule, self._summarise):
            try:
                record()
            except (*STUDY_WRITE_ERRORS, OSError) as err:  # the same fault: already said
                log.debug("not recorded while stopping: %s", err)
        if line is not None:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(code)

    def _summarise(self) -> None:
        summarise_sweep(self.sweep_dir)  # Hydra calls no end-of-sweep callback now

    def _run_per_slot(self) -> None:
        while True:
            with self._lock:
                self._fill_slots()
                if not self.running and not self.queue:
                    return
            time.sleep(self.settings.poll_s)
            with self._lock:
                self._collect_finished()
                self._report_progress()
                self._finish_ready_trials()

    def _fill_slots(self) -> None:
        while len(self.running) < self.slots:
            if not self.queue:
                if not self._more_trials_wanted():
                    return
                self._ask()
            job = self.queue.popleft()
            job.handle = self.launcher.start_job(job.overrides, job.idx)
            job.started_at = time.time()
            self.running.append(job)

    def _collect_finished(self) -> None:
        for job in [job for job in self.running if job.handle.done()]:
            self.running.remove(job)
            result = self.launcher.job_result(job.handle, job.overrides)
            job.handle = None  # a submitit job object left to interpreter exit complains there
            self._job_ended(job, result)

    def _run_in_batches(self) -> None:
        """Batches of ``slots`` jobs through ``launch``; a thread reports and prunes meanwhile."""
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(stop,), daemon=True)
        watcher.start()
        try:
            while True:
                with self._lock:
                    while len(self.queue) < self.slots and self._more_trials_wanted():
                        self._ask()
                    batch = [self.queue.popleft() for _ in range(min(self.slots, len(self.queue)))]
                    if not batch:
                        return
                    for job in batch:
                        job.started_at = time.time()
                    self.running.extend(batch)
                results = self.launcher.launch([j.overrides for j in batch], batch[0].idx)
                with self._lock:
                    for job, result in zip(batch, results, strict=True):
                        self.running.remove(job)
                        self._job_ended(job, result)
                    self._finish_ready_trials()
        finally:
            stop.set()
            watcher.join()

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.poll_s):
            with self._lock:
                self._report_progress()

    # ------------------------------------------------------------------------------ results
    def _job_ended(self, job: Job, result: JobReturn) -> None:
        job.ended_at = time.time()
        outcome = job_outcome(job.job_dir, result)
        job.status, job.value = outcome.status, outcome.value
        if job.status == INFRASTRUCTURE:
            self.last_fault = outcome.error
        log.info(f"job {job.idx} (trial {job.trial}, seed {job.seed}): {job.status}")
        self._report_progress()
        self.write_schedule()

    def _finish_ready_trials(self) -> None:
        """Tell the study every trial whose jobs have all ended (or, pruned, never started)."""
        for run in list(self.trials.values()):
            if all(j.done or (run.pruned and j.started_at is None) for j in run.jobs):
                self._finish_trial(run)

    def _finish_trial(self, run: TrialRun) -> None:
        del self.trials[run.trial.number]
        values = [j.value for j in run.jobs if j.value is not None and math.isfinite(j.value)]
        run.trial.set_user_attr("values", values)
        bad = [j for j in run.jobs if j.done and j.status not in ("completed", "pruned")]
        if any(j.status == INFRASTRUCTURE for j in bad):
            self._machine_failed(run, [j for j in bad if j.status == INFRASTRUCTURE])
            return
        self.infrastructure_in_a_row = 0
        if run.pruned:
            self.study.tell(run.trial, state=TrialState.PRUNED)
            log.info(f"trial {run.trial.number}: pruned")
        elif bad or not values:
            reason = ", ".join(f"job {j.idx}: {j.status}" for j in bad) or "no objective"
            run.trial.set_user_attr("error", reason)
            self.study.tell(run.trial, state=TrialState.FAIL)
            log.warning(f"trial {run.trial.number}: failed ({reason})")
        else:
            value = aggregate(values, self.settings.aggregate)
            self.study.tell(run.trial, value)
            log.info(f"trial {run.trial.number}: {self.settings.aggregate} {value:.4g} of {values}")

    def _machine_failed(self, run: TrialRun, jobs: list[Job]) -> None:
        """A trial that a fault of the machine failed: not counted, replaced by another; too
        many in a row stop the sweep."""
        run.trial.set_user_attr(INFRASTRUCTURE, True)
        run.trial.set_user_attr("error", self.last_fault)
        self.study.tell(run.trial, state=TrialState.FAIL)
        self.infrastructure_in_a_row += 1
        log.warning(
            f"trial {run.trial.number}: job {jobs[0].idx} stopped by a fault of the machine "
            f"({self.last_fault}); not counted, another trial takes its place"
        )
        if self.infrastructure_in_a_row >= MAX_INFRASTRUCTURE_FAILURES:
            raise SweepStopped(
                f"{self.infrastructure_in_a_row} trials in a row stopped by faults of the "
                f"machine, the last: {self.last_fault}; the sweep stops (the same command "
                "resumes it once the cause is gone)"
            )

    def _report_progress(self) -> None:
        """Report every milestone all of a trial's seeds have passed; prune when told to."""
        every = self.settings.report_every
        if every is None:
            return
        for run in list(self.trials.values()):
            while not run.pruned and run.next_milestone <= self.settings.total_steps:
                values = self._milestone_values(run, run.next_milestone)
                if values is None:
                    break
                if values:
                    value = aggregate(values, self.settings.aggregate)
                    run.trial.report(value, run.next_milestone)
                    # asked for every trial, the first ones too: successive halving and
                    # hyperband record a trial's rungs when asked, and later trials compete
                    # with those values
                    if run.trial.should_prune() and self._may_prune(run):
                        self._prune(run)
                run.next_milestone += every

    def _may_prune(self, run: TrialRun) -> bool:
        """Not one of the first ``full_trials``, and some job still running (a trial whose
        jobs have all ended has nothing left to save)."""
        if run.trial.number < self.settings.full_trials:
            return False
        return not all(j.done for j in run.jobs)

    def _milestone_values(self, run: TrialRun, step: int) -> list[float] | None:
        """Each seed's value at ``step``; None while a seed has yet to get there."""
        values = []
        for job in run.jobs:
            reports = read_reports(job.job_dir) if job.started_at is not None else {}
            if step in reports:
                values.append(reports[step])
            elif job.done or any(s > step for s in reports):
                earlier = [s for s in reports if s <= step]  # a run that ended early keeps its last
                if earlier:
                    values.append(reports[max(earlier)])
            else:
                return None
        return values

    def _prune(self, run: TrialRun) -> None:
        run.pruned = True
        log.info(f"trial {run.trial.number}: pruned at {run.next_milestone:,} env steps")
        for job in run.jobs:
            if job in self.queue:
                self.queue.remove(job)  # never started: its slot goes to the next trial
            elif not job.done:
                request_prune(job.job_dir)

    def _mark_interrupted(self) -> None:
        """Tell the trials still in flight as failed, interrupted (not counted on resume)."""
        for run in list(self.trials.values()):
            mark_interrupted(self.study, run.trial.number)
        self.trials.clear()

    # ------------------------------------------------------------------------------ records
    def write_schedule(self) -> None:
        """``schedule.csv``: every job this sweeper started, with its times (slot use)."""
        write_schedule(
            self.sweep_dir,
            [
                {
                    "job": job.idx,
                    "trial": job.trial,
                    "seed": job.seed,
                    "started_at": job.started_at,
                    "ended_at": job.ended_at,
                    "status": job.status or ("running" if job.started_at else "not started"),
                }
                for job in self.jobs
            ],
        )


def mark_interrupted(study: optuna.Study, number: int) -> None:
    """Fail trial ``number`` as interrupted (a stop of the sweep cut it short)."""
    trial = study.trials[number]
    study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
