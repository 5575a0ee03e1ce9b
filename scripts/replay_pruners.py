"""Replay pruner settings on a finished sweep: what each would have saved, and what it would
have kept.

A search run without pruning (``hydra.sweeper.pruner=none``) holds every trial's whole curve.
This script replays its trials, in their order and on the same number of slots, through the
a3c_optuna sweeper's own pruners (``make_pruner``, with its rule that the first
``pruner_startup_trials`` trials run whole) and prints, for each pruner setting: the
slot-seconds and the wall time against the same replay without pruning, the trials pruned, and
whether the trial that ended best survived. So a pruner can be chosen on one's own task before
a sweep spends CPU on it.

What it cannot replay is the sampler's answer to pruning: a live pruned search samples other
configs after each prune (TPE ranks pruned trials below finished ones), so these figures rank
pruner settings on one set of curves; ``bench_sweep.py`` measures whole searches side by side.

A trial's value at a milestone (``total_steps × k / reports_per_trial``) is its job's report
(``trial_reports.jsonl``, which every a3c_optuna job writes), or for older sweeps the last-100
mean of its ``metrics.csv`` interpolated at that step; its last milestone is its objective. A
job holds its slot for its fixed cost (the median, over the sweep's jobs, of the slot time in
``schedule.csv`` beyond the run's own ``wall_time_s``) plus its run time up to the step it
stops at. One job per trial (``seeds_per_trial=1``) and the ``final_mean_reward`` objective.

Usage: python scripts/replay_pruners.py SWEEP_DIR [--slots 2]
           [--setting "pruner=median pruner_warmup_reports=1" ...]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from a3c_exp.runtime.trial import read_reports
from a3c_exp.sweep import read_job_records
from hydra_plugins.a3c_exp_sweeper.config import A3COptunaSweeperConf
from hydra_plugins.a3c_exp_sweeper.sweeper import make_pruner

LAST_100 = "Perf/Mean Reward (last 100)"
DEFAULT_SETTINGS = (
    "pruner=none",
    "pruner=median",
    "pruner=median pruner_warmup_reports=1",
    "pruner=median pruner_warmup_reports=2",
    "pruner=median pruner_startup_trials=3",
    "pruner=successive_halving",
    "pruner=hyperband",
)


@dataclass
class TrialCurve:
    """One finished trial of the sweep: its values at the milestones and its run time."""

    number: int
    values: list[float]  # at milestones 1..reports (the last one: the objective)
    run_s: float  # the run's own wall time for the whole budget


@dataclass
class Replay:
    """What one pruner setting would have done with the sweep's trials."""

    setting: str
    slot_s: float = 0.0
    wall_s: float = 0.0
    pruned: list[int] = field(default_factory=list)
    finished: dict[int, float] = field(default_factory=dict)  # trial -> objective


def sweep_settings(sweep_dir: Path) -> dict[str, Any]:
    """Today's sweeper defaults, with the sweep's own direction and reports per trial (from its
    multirun.yaml): a setting names what differs from the defaults."""
    import yaml

    settings = {k: v for k, v in vars(A3COptunaSweeperConf()).items() if not k.startswith("_")}
    multirun = Path(sweep_dir) / "multirun.yaml"
    if multirun.is_file():
        saved = yaml.safe_load(multirun.read_text()).get("hydra", {}).get("sweeper", {}) or {}
        settings.update({k: saved[k] for k in ("direction", "reports_per_trial") if k in saved})
    return settings


def _override(records: dict[str, Any], key: str) -> str | None:
    prefix = f"{key}="
    return next((o[len(prefix) :] for o in records["overrides"] if o.startswith(prefix)), None)


def load_trials(sweep_dir: Path, reports: int) -> tuple[list[TrialCurve], int, float]:
    """The sweep's completed trials in trial order, their step budget, and a job's fixed cost."""
    records = [r for r in read_job_records(sweep_dir) if r.get("status") == "completed"]
    if not records:
        raise SystemExit(f"error: {sweep_dir}: no completed job records (*/job.json)")
    trials = [_override(r, "trial") for r in records]
    if len(set(trials)) != len(trials):
        raise SystemExit(f"error: {sweep_dir}: several jobs per trial; allowed: seeds_per_trial=1")
    budget = _override(records[0], "total_steps")
    if budget is None:
        raise SystemExit(f"error: {sweep_dir}: its jobs name no total_steps= override")
    total = int(budget)
    milestones = [total * k // reports for k in range(1, reports + 1)]
    curves = []
    for record, trial in zip(records, trials, strict=True):
        job_dir = Path(record["job_dir"])
        curves.append(
            TrialCurve(
                number=int(trial) if trial is not None else int(record["job"]),
                values=_milestone_values(job_dir, milestones, float(record["objective"])),
                run_s=float(record["wall_time_s"]),
            )
        )
    return sorted(curves, key=lambda c: c.number), total, _fixed_cost(sweep_dir, records)


def _milestone_values(job_dir: Path, milestones: list[int], objective: float) -> list[float]:
    """The job's reports at the milestones, else its last-100 mean interpolated there."""
    reported = read_reports(job_dir)
    if all(m in reported for m in milestones[:-1]):
        return [reported[m] for m in milestones[:-1]] + [objective]
    with open(job_dir / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get(LAST_100)]
    steps = [float(r["global_step"]) for r in rows]
    values = [float(r[LAST_100]) for r in rows]
    return [float(np.interp(m, steps, values)) for m in milestones[:-1]] + [objective]


def _fixed_cost(sweep_dir: Path, records: list[dict[str, Any]]) -> float:
    """Median slot time a job held beyond its run's wall time (0 without schedule.csv)."""
    schedule = Path(sweep_dir) / "schedule.csv"
    if not schedule.is_file():
        return 0.0
    run_s = {int(r["job"]): float(r["wall_time_s"]) for r in records}
    with open(schedule, newline="") as handle:
        rows = list(csv.DictReader(handle))
    extra = [
        float(r["ended_at"]) - float(r["started_at"]) - run_s[int(r["job"])]
        for r in rows
        if r.get("ended_at") and int(r["job"]) in run_s
    ]
    return max(0.0, statistics.median(extra)) if extra else 0.0


def replay(
    trials: list[TrialCurve], settings: dict[str, Any], total: int, slots: int, fixed_s: float
) -> Replay:
    """Run the trials through the setting's pruner on ``slots`` slots, in simulated time."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reports = int(settings["reports_per_trial"])
    # the sweeper's study name: hyperband assigns a trial's bracket from it, so an unnamed
    # (randomly named) study would give other figures on every replay
    study = optuna.create_study(
        study_name=settings["study_name"],
        direction=settings["direction"],
        pruner=make_pruner(settings, total),
    )
    full_trials = int(settings["pruner_startup_trials"])  # as the sweeper's StudySettings
    result = Replay(setting="")
    free_at = [0.0] * slots
    queue = list(trials)
    running: list[tuple[float, int, Any, TrialCurve, float]] = []  # (time, k, trial, curve, start)

    def start(slot_time: float) -> None:
        curve = queue.pop(0)
        trial = study.ask()
        first = slot_time + fixed_s + curve.run_s / reports
        running.append((first, 1, trial, curve, slot_time))

    for _ in range(min(slots, len(queue))):
        start(0.0)
    while running:
        running.sort(key=lambda r: r[0])
        now, k, trial, curve, began = running.pop(0)
        value = curve.values[k - 1]
        stop = k == reports
        if stop:
            study.tell(trial, value)
            result.finished[curve.number] = value
        else:
            trial.report(value, total * k // reports)
            # asked for every trial, as the sweeper asks: successive halving records its rungs
            if trial.should_prune() and trial.number >= full_trials:
                study.tell(trial, state=TrialState.PRUNED)
                result.pruned.append(curve.number)
                stop = True
        if not stop:
            running.append((now + curve.run_s / reports, k + 1, trial, curve, began))
            continue
        result.slot_s += now - began
        free_at.append(now)
        if queue:
            free_at.remove(min(free_at))
            start(now)
    result.wall_s = max(free_at)
    return result


def parse_setting(text: str, base: dict[str, Any]) -> dict[str, Any]:
    """``"key=value key=value"`` over the sweep's settings (values as YAML reads them)."""
    import yaml

    settings = dict(base)
    for pair in text.split():
        key, sep, value = pair.partition("=")
        if not sep or key not in settings:
            allowed = ", ".join(k for k in settings if k != "params")
            raise SystemExit(f"error: --setting {pair!r}: not key=value of {allowed}")
        settings[key] = yaml.safe_load(value)
    return settings


def main(argv: list[str] | None = None) -> list[Replay]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--slots", type=int, default=2, help="jobs at once, as in the sweep")
    parser.add_argument("--setting", action="append", help="key=value ... of hydra.sweeper")
    args = parser.parse_args(argv)
    base = sweep_settings(args.sweep_dir)
    reports = int(base["reports_per_trial"])
    trials, total, fixed_s = load_trials(args.sweep_dir, reports)
    best = max(trials, key=lambda t: t.values[-1])
    print(
        f"{args.sweep_dir}: {len(trials)} trials of {total:,} steps, {args.slots} slots, "
        f"fixed cost {fixed_s:.1f} s a job; best trial {best.number} ({best.values[-1]:.4g})"
    )
    results = []
    for text in args.setting or DEFAULT_SETTINGS:
        result = replay(trials, parse_setting(text, base), total, args.slots, fixed_s)
        result.setting = text
        results.append(result)
    none = replay(trials, parse_setting("pruner=none", base), total, args.slots, fixed_s)
    print(f"{'setting':<45} {'slot-s':>7} {'wall':>6} {'pruned':>6}  best kept  best found")
    for r in results:
        found = max(r.finished.values())
        print(
            f"{r.setting:<45} {r.slot_s / none.slot_s:>7.2f} {r.wall_s / none.wall_s:>6.2f} "
            f"{len(r.pruned):>6}  {'yes' if best.number in r.finished else 'no':>9}  {found:.4g}"
        )
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
