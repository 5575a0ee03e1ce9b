"""Population-based training for ``hydra/sweeper=a3c_pbt``: asynchronous, over any launcher.

A member is a line of training jobs: interval ``i`` of member ``m`` is one training job that
resumes from the member's last checkpoint and trains ``ready_every`` env steps of its own (the
project's resume honours the command line, so the job runs with the member's values in force).
When a member's interval ends (its ready point), it is compared with the population's latest
scores at once, with no generation barrier: a member in the bottom ``quantile`` copies a member
of the top ``quantile`` that is better by more than ``margin`` (exploit: the next interval
resumes from the donor's last checkpoint, one consistent snapshot of weights, optimizer
statistics and counters) and perturbs the copied values (explore: each multiplied by one of
``perturb_factors``, or drawn afresh with ``resample_probability``, always inside ``params``).
Each job slot takes the next member that is waiting, the one with the fewest steps of its own
first, so members can outnumber slots and no slot waits while a member can run.

Every member has its own seed, derived from the sweep's with ``numpy.random.SeedSequence``: no
two members share a stream, and a member keeps its streams after copying another's weights.

Files in the sweep directory: ``pbt_state.json`` (the population, rewritten whole after every
event: the same command resumes from it, and a finished interval never runs twice),
``pbt_lineage.csv`` (a row per member and interval: ``member, interval, env_steps, parent``,
one column per value, ``objective``), ``pbt_schedule.png`` (each value over env steps per
member, coloured by objective, exploits marked), ``schedule.csv`` and the summary.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from a3c_exp.files import atomic_write_text, machine_fault, read_json
from a3c_exp.sweep import summarise_sweep
from hydra_plugins.a3c_exp_launchers.launchers import interrupt_on_sigterm

from ._search_space import SearchSpace
from ._slots import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    INFRASTRUCTURE,
    SweepStopped,
    job_outcome,
    read_schedule,
    study_fault_line,
    write_schedule,
)

log = logging.getLogger(__name__)

STATE = "pbt_state.json"
LINEAGE = "pbt_lineage.csv"
SCHEDULE_PLOT = "pbt_schedule.png"
SUMMARY_SECTION = "pbt_summary.md"  # summary.md ends with it (a3c_exp.sweep.SECTIONS)
MAX_FAILURES = 3
"""Failed intervals in a row after which a member stops (or, by faults of the machine, the
whole sweep)."""


# ----------------------------------------------------------------------------- the maths
def member_seed(sweep_seed: int, member: int) -> int:
    """Member ``member``'s own seed: a stream of the sweep's seed (never ``seed + member``)."""
    return int(np.random.SeedSequence([sweep_seed, member]).generate_state(1)[0] % (2**31))


def sample_value(dist: BaseDistribution, rng: np.random.Generator) -> Any:
    """A value drawn from ``dist`` (uniform, log-uniform, integer steps or a choice)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            value = math.exp(rng.uniform(math.log(dist.low), math.log(dist.high + 1)))
            return int(min(dist.high, max(dist.low, math.floor(value))))
        steps = (dist.high - dist.low) // dist.step
        return int(dist.low + dist.step * rng.integers(steps + 1))
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
    return float(rng.uniform(dist.low, dist.high))


def perturb_value(dist: BaseDistribution, value: Any, factor: float) -> Any:
    """``value`` moved by ``factor``, kept inside ``dist``: a number times the factor (clipped
    to its bounds, on its integer steps); a choice of numbers one step up (factor > 1) or down
    in the sorted choices; another choice stays."""
    if isinstance(dist, CategoricalDistribution):
        choices = list(dist.choices)
        if not all(isinstance(c, int | float) for c in choices) or value not in choices:
            return value
        ordered = sorted(choices)
        index = ordered.index(value) + (1 if factor > 1 else -1)
        return ordered[min(len(ordered) - 1, max(0, index))]
    if isinstance(dist, IntDistribution):
        moved = round((value * factor - dist.low) / dist.step) * dist.step + dist.low
        if moved == value:  # a small integer: move at least one step
            moved = value + (dist.step if factor > 1 else -dist.step)
        return int(min(dist.high, max(dist.low, moved)))
    assert isinstance(dist, FloatDistribution)
    return float(min(dist.high, max(dist.low, value * factor)))


def explore(
    params: dict[str, Any],
    space: dict[str, BaseDistribution],
    factors: Sequence[float],
    resample_probability: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The copied values, each drawn afresh (``resample_probability``) or perturbed by a factor
    drawn from ``factors``; every result inside its distribution."""
    explored = {}
    for key, dist in space.items():
        if rng.random() < resample_probability:
            explored[key] = sample_value(dist, rng)
        else:
            factor = float(factors[int(rng.integers(len(factors)))])
            explored[key] = perturb_value(dist, params[key], factor)
    return explored


def better(a: float, b: float, direction: str, margin: float = 0.0) -> bool:
    """Whether score ``a`` beats ``b`` by more than ``margin`` in ``direction``."""
    return a > b + margin if direction == "maximize" else a < b - margin


def choose_donor(
    member: int,
    scores: dict[int, float],
    direction: str,
    quantile: float,
    margin: float,
    rng: np.random.Generator,
) -> int | None:
    """The member that ``member`` copies, or None: only a member in the bottom ``quantile``
    of the latest ``scores`` is replaced, by one of the top quantile better by more than
    ``margin``. With nothing to compare (fewer than two scores) nobody is replaced; the best
    is the best in ``direction``, never the first of a list by default."""
    if member not in scores or len(scores) < 2:
        return None
    ranked = sorted(scores, key=lambda m: scores[m], reverse=direction == "maximize")
    count = max(1, int(len(ranked) * quantile))
    top, bottom = ranked[:count], ranked[-count:]
    if member not in bottom or member in top:
        return None
    candidates = [m for m in top if better(scores[m], scores[member], direction, margin)]
    if not candidates:
        return None
    return int(candidates[int(rng.integers(len(candidates)))])


# ----------------------------------------------------------------------------- the population
@dataclass
class Member:
    """One member of the population, as ``pbt_state.json`` keeps it."""

    member: int
    seed: int
    params: dict[str, Any]
    checkpoint: str | None = None  # the checkpoint its next interval resumes from
    parent: int | None = None  # whose weights the next interval continues (None: its own)
    global_step: int = 0  # the env step its checkpoint is at (a copied one's, after exploit)
    own_steps: int = 0  # env steps it trained itself
    interval: int = 0  # the next interval to run
    score: float | None = None  # its latest objective
    failures: int = 0  # failed intervals in a row
    done: bool = False
    failed: bool = False


@dataclass
class PBTSettings:
    """The sweeper's config, checked, with the training config's budget."""

    population: int
    ready_every: int
    total_steps: int
    quantile: float
    perturb_factors: list[float]
    resample_probability: float
    margin: float
    warmup_intervals: int
    direction: str
    seed: int
    poll_s: float
    wandb: bool  # every member one W&B run across its intervals
    group: str = ""  # the sweep's W&B group


@dataclass
class IntervalJob:
    """One interval of one member, as a launcher job."""

    idx: int
    member: int
    interval: int
    overrides: list[str]
    job_dir: Path
    start_step: int
    parent: int
    params: dict[str, Any]
    handle: Any = None
    started_at: float | None = None
    ended_at: float | None = None
    status: str | None = None


@dataclass
class PBTRunner:
    """Runs the population to its end with the given launcher (see the module's docstring)."""

    space: SearchSpace
    settings: PBTSettings
    launcher: Any
    sweep_dir: Path
    first_job: int
    slots: int
    members: list[Member] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[IntervalJob] = field(default_factory=list)
    running: list[IntervalJob] = field(default_factory=list)
    idle_slot_seconds: float = 0.0
    machine_failures: int = 0

    def __post_init__(self) -> None:
        self.next_job = self.first_job
        self.rng = np.random.default_rng(np.random.SeedSequence([self.settings.seed, 7]))
        state = read_json(self.sweep_dir / STATE, "PBT state")
        if isinstance(state, dict) and state.get("members"):
            self.members = [Member(**m) for m in state["members"]]
            self.lineage = list(state.get("lineage", []))
            self.idle_slot_seconds = float(state.get("idle_slot_seconds", 0.0))
            self.rng.bit_generator.state = state.get("rng", self.rng.bit_generator.state)
            log.info(f"resuming the population of {len(self.members)} from {STATE}")
        else:
            self.members = [
                Member(
                    member=m,
                    seed=member_seed(self.settings.seed, m),
                    params={k: sample_value(d, self.rng) for k, d in self.distributions.items()},
                )
                for m in range(self.settings.population)
            ]

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        """The searched values' distributions."""
        return self.space.distributions

    # ------------------------------------------------------------------------------ running
    def run(self) -> None:
        """Train the population to its end; Ctrl-C stops every member cleanly (exit 130), a
        sweep that cannot write its records or a machine that keeps failing jobs in one line
        (exit 1); the same command resumes."""
        try:
            with interrupt_on_sigterm():
                try:
                    self._loop()
                except OSError as err:
                    if not machine_fault(err):
                        raise
                    raise SweepStopped(study_fault_line(err, self.sweep_dir)) from None
        except SweepStopped as stopped:
            self._stop(EXIT_FAILED, str(stopped))
        except KeyboardInterrupt:
            self._stop(EXIT_INTERRUPTED, None)
        self.finish()

    def _loop(self) -> None:
        per_slot = hasattr(self.launcher, "start_job")
        last = time.monotonic()
        while True:
            self._fill_slots(per_slot)
            if not self.running:
                if all(m.done for m in self.members):
                    return
                if not per_slot:
                    continue
            time.sleep(self.settings.poll_s)
            now = time.monotonic()
            waiting = sum(1 for m in self.members if self._waiting(m))
            free = self.slots - len(self.running)
            if waiting and free > 0:
                self.idle_slot_seconds += min(waiting, free) * (now - last)
            last = now
            if per_slot:
                self._collect_finished()

    def _waiting(self, member: Member) -> bool:
        return not member.done and not any(j.member == member.member for j in self.running)

    def _fill_slots(self, per_slot: bool) -> None:
        while len(self.running) < self.slots:
            waiting = [m for m in self.members if self._waiting(m)]
            if not waiting:
                return
            member = min(waiting, key=lambda m: (m.own_steps, m.member))
            job = self._job_for(member)
            job.started_at = time.time()
            self.jobs.append(job)
            if per_slot:
                job.handle = self.launcher.start_job(job.overrides, job.idx)
                self.running.append(job)
            else:  # a launcher without start_job runs one job at a time, to its end
                self.running.append(job)
                (result,) = self.launcher.launch([job.overrides], job.idx)
                self.running.remove(job)
                self._ended(job, result)
                return

    def _collect_finished(self) -> None:
        for job in [job for job in self.running if job.handle.done()]:
            self.running.remove(job)
            result = self.launcher.job_result(job.handle, job.overrides)
            job.handle = None
            self._ended(job, result)

    def _job_for(self, member: Member) -> IntervalJob:
        """The next interval of ``member``: its values, seed, budget and starting checkpoint."""
        settings = self.settings
        steps = min(settings.ready_every, settings.total_steps - member.own_steps)
        target = member.global_step + steps
        overrides = [
            *self.space.overrides(member.params),
            f"seed={member.seed}",
            f"total_steps={target}",
            f"trial={member.member}",
        ]
        if member.checkpoint is not None:
            overrides.append(f"resume={member.checkpoint}")
        if settings.wandb:
            run_id = f"{settings.group or 'pbt'}-member{member.member}"
            overrides += [f"logger.wandb.id={run_id}", f"logger.wandb.name=member{member.member}"]
        idx = self.next_job
        self.next_job += 1
        job_dir = (
            Path(self.launcher.job_dir(overrides, idx))
            if hasattr(self.launcher, "job_dir")
            else self.sweep_dir / str(idx)
        )
        parent = member.parent if member.parent is not None else member.member
        log.info(
            f"member {member.member}, interval {member.interval}: job {idx} to {target:,} env "
            f"steps from {'its own' if parent == member.member else f'member {parent}'}"
            f" checkpoint: {self._describe(member.params)}"
        )
        return IntervalJob(
            idx,
            member.member,
            member.interval,
            overrides,
            job_dir,
            member.global_step,
            parent,
            dict(member.params),
        )

    @staticmethod
    def _describe(params: dict[str, Any]) -> str:
        return " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
        )

    # ------------------------------------------------------------------------------ ready points
    def _ended(self, job: IntervalJob, result: Any) -> None:
        job.ended_at = time.time()
        outcome = job_outcome(job.job_dir, result)
        job.status = outcome.status
        member = self.members[job.member]
        if outcome.status == INFRASTRUCTURE:
            self.machine_failures += 1
            log.warning(f"member {member.member}: job {job.idx} stopped by the machine")
            if self.machine_failures >= MAX_FAILURES:
                self.save()
                raise SweepStopped(
                    f"{self.machine_failures} jobs in a row stopped by faults of the machine, "
                    f"the last: {outcome.error}; the sweep stops (the same command resumes it "
                    "once the cause is gone)"
                )
            self.save()
            return  # the same interval runs again
        self.machine_failures = 0
        checkpoint = job.job_dir / "checkpoints" / "last.ckpt"
        if outcome.status != "completed" or not checkpoint.is_file():
            member.failures += 1
            log.warning(f"member {member.member}: interval {job.interval} {outcome.status}")
            if member.failures >= MAX_FAILURES:
                member.done = member.failed = True
                log.warning(f"member {member.member}: {MAX_FAILURES} failures in a row, stopped")
            self.save()
            return
        steps = int(outcome.record.get("total_steps") or job.start_step)
        member.own_steps += max(0, steps - job.start_step)
        member.global_step = steps
        member.checkpoint = str(checkpoint)
        member.parent = None
        member.score = outcome.value
        member.failures = 0
        self.lineage.append(
            {
                "member": member.member,
                "interval": job.interval,
                "env_steps": steps,
                "own_steps": member.own_steps,
                "parent": job.parent,
                **job.params,
                "objective": outcome.value,
                "job": job.idx,
            }
        )
        member.interval += 1
        if member.own_steps >= self.settings.total_steps:
            member.done = True
            log.info(f"member {member.member}: done, objective {outcome.value}")
        else:
            self._ready(member)
        self.save()

    def _ready(self, member: Member) -> None:
        """Exploit and explore at ``member``'s ready point, against the latest scores."""
        if member.interval <= self.settings.warmup_intervals or member.score is None:
            return
        scores = {
            m.member: m.score
            for m in self.members
            if m.score is not None and math.isfinite(m.score) and not m.failed
        }
        settings = self.settings
        donor = choose_donor(
            member.member, scores, settings.direction, settings.quantile, settings.margin, self.rng
        )
        if donor is None:
            return
        source = self.members[donor]
        member.params = explore(
            source.params,
            self.distributions,
            settings.perturb_factors,
            settings.resample_probability,
            self.rng,
        )
        member.checkpoint = source.checkpoint
        member.global_step = source.global_step
        member.parent = donor
        log.info(
            f"member {member.member} ({member.score:.4g}) copies member {donor} "
            f"({source.score:.4g}): {self._describe(member.params)}"
        )

    # ------------------------------------------------------------------------------ records
    def save(self) -> None:
        """``pbt_state.json``, ``pbt_lineage.csv`` and ``schedule.csv``, each written whole."""
        state = {
            "members": [asdict(m) for m in self.members],
            "lineage": self.lineage,
            "idle_slot_seconds": self.idle_slot_seconds,
            "rng": self.rng.bit_generator.state,
        }
        atomic_write_text(self.sweep_dir / STATE, json.dumps(state, indent=2, default=str))
        columns = ["member", "interval", "env_steps", "own_steps", "parent"]
        columns += [*self.distributions, "objective", "job"]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.lineage)
        atomic_write_text(self.sweep_dir / LINEAGE, text.getvalue())
        write_schedule(
            self.sweep_dir,
            [
                {
                    "job": job.idx,
                    "member": job.member,
                    "interval": job.interval,
                    "started_at": job.started_at,
                    "ended_at": job.ended_at,
                    "status": job.status or ("running" if job.started_at else "not started"),
                }
                for job in self.jobs
            ],
        )

    def _stop(self, code: int, line: str | None) -> None:
        if self.running and hasattr(self.launcher, "stop_jobs"):
            log.warning(f"stopping {len(self.running)} running jobs")
            self.launcher.stop_jobs([job.handle for job in self.running])
        for job in self.running:
            job.ended_at, job.status = time.time(), "interrupted"
        self.running.clear()
        try:
            self.save()
            summarise_sweep(self.sweep_dir)
        except OSError as err:  # the same fault that stopped it: already said
            log.debug("not recorded while stopping: %s", err)
        if line is not None:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(code)

    def finish(self) -> None:
        """The summary: the job table, the best member's final checkpoint, the schedule plot
        and how busy the slots were."""
        self.save()
        plot_schedule(self.sweep_dir, self.lineage, self.distributions, self.settings.direction)
        atomic_write_text(self.sweep_dir / SUMMARY_SECTION, self.report() + "\n")
        summarise_sweep(self.sweep_dir)  # ends with that section

    def report(self) -> str:
        """The PBT section of ``summary.md``."""
        finished = [m for m in self.members if m.score is not None and not m.failed]
        lines = ["## Population-based training", ""]
        if finished:
            best = max(
                finished,
                key=lambda m: m.score if self.settings.direction == "maximize" else -m.score,
            )
            lines.append(
                f"Best member: {best.member}, objective {best.score:.4g} at "
                f"{best.global_step:,} env steps; its final checkpoint: `{best.checkpoint}`"
            )
            lines.append(f"Its values at the end: {self._describe(best.params)}")
        exploits = sum(1 for row in self.lineage if int(row["parent"]) != int(row["member"]))
        use = slot_use(self.sweep_dir)
        lines += [
            "",
            f"Intervals: {len(self.lineage)}; started from another member's checkpoint: "
            f"{exploits}. Lineage: `{LINEAGE}`; schedules: `{SCHEDULE_PLOT}`.",
            f"Slot time: {use['slot_seconds']:.0f} s, of which training "
            f"{use['train_seconds']:.0f} s; job start-up and exploit/explore "
            f"{use['overhead_share']:.1%} of slot time; idle slot-seconds while members "
            f"waited: {self.idle_slot_seconds:.1f}",
        ]
        return "\n".join(lines)


def slot_use(sweep_dir: Path) -> dict[str, float]:
    """Slot seconds (each job's start to end), training seconds (its record's wall time) and
    the share of slot time that was neither (start-up, checkpoints read, exploit/explore)."""
    from ._slots import read_record

    def wall(record: dict[str, Any]) -> float:
        value = record.get("wall_time_s")
        return float(value) if isinstance(value, int | float) else 0.0

    slot = train = 0.0
    for row in read_schedule(sweep_dir):
        try:
            started, ended = float(row["started_at"]), float(row["ended_at"])
        except (TypeError, ValueError, KeyError):
            continue
        slot += ended - started
        record = read_record(Path(sweep_dir) / str(row["job"]))
        # a resumed run's clock goes on from its checkpoint's: this job's own training time is
        # its wall time less that of the job whose last checkpoint it resumed from
        resumed = [
            o.partition("=")[2] for o in record.get("overrides") or [] if o.startswith("resume=")
        ]
        before = 0.0
        if resumed and Path(resumed[-1]).parent.parent.parent == Path(sweep_dir):
            before = wall(read_record(Path(resumed[-1]).parent.parent))
        train += max(0.0, wall(record) - before)
    share = 1.0 - train / slot if slot > 0 else 0.0
    return {"slot_seconds": slot, "train_seconds": train, "overhead_share": share}


def plot_schedule(
    sweep_dir: Path,
    lineage: list[dict[str, Any]],
    distributions: dict[str, BaseDistribution],
    direction: str,
) -> Path | None:
    """``pbt_schedule.png``: each value over env steps, a line per member coloured by its
    latest objective, an x where an interval started from another member's checkpoint."""
    if not lineage or not distributions:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(distributions)
    objectives = [r["objective"] for r in lineage if isinstance(r["objective"], int | float)]
    low, high = (min(objectives), max(objectives)) if objectives else (0.0, 1.0)
    colours = plt.get_cmap("viridis" if direction == "maximize" else "viridis_r")
    fig, axes = plt.subplots(
        len(keys), 1, figsize=(8, 2.6 * len(keys)), squeeze=False, layout="constrained"
    )
    members = sorted({int(r["member"]) for r in lineage})

    def shade(value: Any) -> Any:
        known = isinstance(value, int | float) and high > low
        return colours((value - low) / (high - low) if known else 1.0)

    for ax, key in zip(axes[:, 0], keys, strict=True):
        for member in members:
            rows = [r for r in lineage if int(r["member"]) == member]
            # each interval's value holds from its start (the previous end) to the step it ended
            # at, coloured by the objective it reached; a grey riser where the value changed
            ends = [int(r["env_steps"]) for r in rows]
            own = [int(r.get("own_steps") or r["env_steps"]) for r in rows]
            # an interval starts where its checkpoint was: its end less the steps it trained
            # (after taking over another's checkpoint, that one's step, not the member's last)
            starts = [
                end - (mine - before)
                for end, mine, before in zip(ends, own, [0, *own[:-1]], strict=True)
            ]
            ys = [r[key] for r in rows]
            risers_x = [x for start, end in zip(starts, ends, strict=True) for x in (start, end)]
            risers_y = [y for y in ys for _ in (0, 1)]
            ax.plot(risers_x, risers_y, color="0.8", lw=0.8, zorder=1)
            for start, end, y, row in zip(starts, ends, ys, rows, strict=True):
                ax.plot([start, end], [y, y], color=shade(row["objective"]), lw=2.5, zorder=2)
            ax.annotate(
                f"m{member}",
                (ends[-1], ys[-1]),
                fontsize="x-small",
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
            )
            jumps = [
                (x, y)
                for x, y, r in zip(starts, ys, rows, strict=True)
                if int(r["parent"]) != member
            ]
            if jumps:
                ax.scatter(*zip(*jumps, strict=True), marker="x", color="red", zorder=3)
        dist = distributions[key]
        if getattr(dist, "log", False):
            ax.set_yscale("log")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    mappable = plt.cm.ScalarMappable(norm=plt.Normalize(low, high), cmap=colours)
    fig.colorbar(mappable, ax=axes[:, 0].tolist(), label="objective of the interval")
    axes[0, 0].set_title("values over env steps per member (x: took over another's checkpoint)")
    axes[-1, 0].set_xlabel("env steps (the member's checkpoint)")
    path = Path(sweep_dir) / SCHEDULE_PLOT
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
