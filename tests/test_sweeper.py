"""The a3c_optuna sweeper's search, driven with a scripted launcher (no training, no timing).

Each scripted job writes one report per poll of the sweeper (its value: the trial's ``x`` times
the share of the budget done, plus a little per seed), then its record; it honours a prune
request at its next report. So the tests see exactly what the sweeper does with slots, reports,
pruning, seeds and resume, in well under a second of machine time each.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from a3c_exp.runtime.trial import PRUNE_REQUEST, TrialReporter, read_reports
from hydra_plugins.a3c_exp_sweeper._search_space import SearchSpaceError, search_space
from hydra_plugins.a3c_exp_sweeper._study_runner import INTERRUPTED, StudyRunner, StudySettings
from hydra_plugins.a3c_exp_sweeper.sweeper import _study_settings, next_job_number, open_study

TOTAL = 1000
EVERY = 100


def _space(*lines: str):
    return search_space(OverridesParser.create().parse_overrides(list(lines)))


def _value(overrides: list[str]) -> tuple[float, int]:
    values = dict(o.split("=", 1) for o in overrides)
    return float(values["x"]), int(values["seed"])


class ScriptedJob:
    """A job that advances one milestone each time it is polled."""

    def __init__(self, launcher: ScriptedLauncher, job_dir: Path, overrides: list[str], pace: int):
        self.launcher, self.job_dir, self.overrides = launcher, job_dir, overrides
        self.pace, self.polls = pace, 0  # a milestone every ``pace`` polls: jobs end apart
        self.job_dir.mkdir(parents=True)
        self.reporter = TrialReporter(job_dir, EVERY, poll_s=0.0)
        self.step, self.finished, self.value = 0, False, None
        x, seed = _value(overrides)
        self.x, self.seed = x, seed

    def done(self) -> bool:
        if self.finished:
            return True
        self.polls += 1
        if self.polls % self.pace:
            return False
        status = None
        if self.reporter.pruned():
            status = "pruned"
        else:
            self.step += EVERY
            self.value = self.x * self.step / TOTAL + 0.01 * self.seed
            self.reporter.report(self.step, self.value)
            if self.step >= TOTAL:
                status = "completed"
        if status:
            record = {"status": status, "objective": self.value, "overrides": self.overrides}
            (self.job_dir / "job.json").write_text(json.dumps(record))
            self.finished = True
            self.launcher.active -= 1
        return self.finished


class ScriptedLaunchers:
    """What both scripted launchers share: job directories, results, the counted pauses."""

    def __init__(self, sweep_dir: Path):
        self.sweep_dir = sweep_dir
        self.active = 0
        self.started: list[tuple[int, list[str]]] = []
        self.busy_while_waiting: list[int] = []  # jobs running at each pause, while jobs wait
        self.total_jobs = 0

    def job_dir(self, overrides, idx) -> Path:
        return self.sweep_dir / str(idx)

    def job_result(self, job, overrides) -> JobReturn:
        return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=job.value)

    def sleep(self, seconds: float) -> None:
        """The sweeper's pause between two polls: count the jobs running then."""
        if len(self.started) < self.total_jobs:
            self.busy_while_waiting.append(self.active)


class ScriptedLauncher(ScriptedLaunchers):
    """Starts scripted jobs one at a time, as the project's launchers do (``start_job``)."""

    def start_job(self, overrides, idx) -> ScriptedJob:
        self.active += 1
        self.started.append((idx, list(overrides)))
        return ScriptedJob(self, self.job_dir(overrides, idx), list(overrides), 1 + idx % 3)

    def stop_jobs(self, jobs) -> None:
        for job in jobs:
            job.finished = True


class ScriptedBatchLauncher(ScriptedLaunchers):
    """Only Hydra's ``launch``: a batch runs to its end before the call returns."""

    def __init__(self, sweep_dir: Path):
        super().__init__(sweep_dir)
        self.batches: list[list[int]] = []

    def launch(self, job_overrides, initial_job_idx):
        idxs = list(range(initial_job_idx, initial_job_idx + len(job_overrides)))
        self.batches.append(idxs)
        jobs = [
            ScriptedJob(self, self.job_dir(o, i), list(o), 1)
            for o, i in zip(job_overrides, idxs, strict=True)
        ]
        while not all(job.done() for job in jobs):
            time.sleep(0.01)  # the sweeper's watcher reads the reports meanwhile
        return [self.job_result(job, job.overrides) for job in jobs]


def _study(tmp_path: Path, pruner=None, sampler=None) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        study_name="a3c",
        direction="maximize",
        sampler=sampler or optuna.samplers.RandomSampler(seed=0),
        pruner=pruner or optuna.pruners.NopPruner(),
        load_if_exists=True,
    )


def _run(
    tmp_path, study, n_trials, seeds=(0,), slots=2, report_every=EVERY, how="mean", full_trials=0
):
    import types

    from hydra_plugins.a3c_exp_sweeper import _study_runner

    launcher = ScriptedLauncher(tmp_path)
    launcher.total_jobs = n_trials * len(seeds)
    settings = StudySettings(
        n_trials, list(seeds), how, report_every, TOTAL, poll_s=0.0, full_trials=full_trials
    )
    runner = StudyRunner(
        study,
        _space("x=interval(0, 1)", "env=cartpole"),
        settings,
        launcher,
        tmp_path,
        first_job=next_job_number(tmp_path),
        slots=slots,
    )
    clock = _study_runner.time
    _study_runner.time = types.SimpleNamespace(time=clock.time, sleep=launcher.sleep)
    try:
        runner.run()
    finally:
        _study_runner.time = clock
    return launcher, runner


def test_hydra_sweep_grammar_becomes_optuna_distributions():
    space = _space(
        "optim.lr=tag(log, interval(1e-4, 1e-2))",
        "loss.gae_lambda=interval(0.9, 1.0)",
        "loss.value_coef=interval(1, 4)",  # Hydra's intervals are of floats
        "rollout_len=choice(5, 10, 20)",
        "envs_per_worker=range(1, 7, 2)",
        "env=doom,cartpole",
        "total_steps=5000",
    )
    assert space.distributions == {
        "optim.lr": FloatDistribution(1e-4, 1e-2, log=True),
        "loss.gae_lambda": FloatDistribution(0.9, 1.0),
        "loss.value_coef": FloatDistribution(1.0, 4.0),
        "rollout_len": CategoricalDistribution([5, 10, 20]),
        "envs_per_worker": IntDistribution(1, 5, step=2),  # Hydra's range excludes its stop
        "env": CategoricalDistribution(["doom", "cartpole"]),
    }
    assert space.fixed == ["total_steps=5000"]
    assert space.overrides({"rollout_len": 10, "optim.lr": 0.001}) == [
        "total_steps=5000",
        "rollout_len=10",
        "optim.lr=0.001",
    ]
    with pytest.raises(SearchSpaceError, match="sampler=grid needs choice"):
        space.grid()
    assert _space("env=doom,cartpole", "rollout_len=range(5, 20, 5)").grid() == {
        "env": ["doom", "cartpole"],
        "rollout_len": [5, 10, 15],
    }
    with pytest.raises(SearchSpaceError, match="needs low > 0"):
        _space("optim.lr=tag(log, interval(0, 1))")


def test_a_new_job_starts_as_soon_as_a_slot_frees(tmp_path):
    launcher, _ = _run(tmp_path, _study(tmp_path), n_trials=7, slots=2)
    assert len(launcher.started) == 7
    # every poll made while jobs were still waiting found both slots busy: no batch barrier
    assert launcher.busy_while_waiting and set(launcher.busy_while_waiting) == {2}


def test_a_trial_behind_the_median_is_pruned_and_its_jobs_stop(tmp_path):
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2 * EVERY)
    study = _study(tmp_path, pruner=pruner)
    _run(tmp_path, study, n_trials=10, slots=2)
    states = [t.state for t in study.trials]
    assert len(states) == 10 and TrialState.PRUNED in states
    for trial in study.trials:
        jobs = [tmp_path / str(idx) for idx in trial.user_attrs["jobs"]]
        record = json.loads((jobs[0] / "job.json").read_text())
        steps = sorted(read_reports(jobs[0]))
        if trial.state == TrialState.PRUNED:
            assert (jobs[0] / PRUNE_REQUEST).is_file() and record["status"] == "pruned"
            assert steps[-1] < TOTAL  # stopped before its budget
            assert steps[-1] >= 2 * EVERY  # never during its warm-up
        else:
            assert record["status"] == "completed" and steps[-1] == TOTAL
            assert not (jobs[0] / PRUNE_REQUEST).exists()
    # reports reached the study at the same steps in every trial (what the pruner compares)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert {tuple(t.intermediate_values) for t in complete} == {
        tuple(range(EVERY, TOTAL + 1, EVERY))
    }


class AlwaysPrune(optuna.pruners.BasePruner):
    """A pruner that prunes every trial it is asked about."""

    def prune(self, study, trial) -> bool:
        return True


def test_the_first_trials_run_their_whole_budget_whatever_the_pruner_says(tmp_path):
    study = _study(tmp_path, pruner=AlwaysPrune())
    _run(tmp_path, study, n_trials=6, slots=2, full_trials=3)
    states = [t.state for t in study.trials]
    assert states[:3] == [TrialState.COMPLETE] * 3  # the sampler's random startup trials
    assert states[3:] == [TrialState.PRUNED] * 3
    assert [max(read_reports(tmp_path / str(i))) for i in range(3)] == [TOTAL] * 3


def test_successive_halving_keeps_the_rungs_of_the_first_trials(tmp_path):
    # the first trials are never pruned, but their values must still sit on the rungs: later
    # trials compete with them there
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=EVERY, reduction_factor=3)
    study = _study(tmp_path, pruner=pruner)
    _run(tmp_path, study, n_trials=5, slots=2, full_trials=3)
    for trial in study.trials[:3]:
        assert trial.state == TrialState.COMPLETE
        assert any(key.startswith("completed_rung_") for key in trial.system_attrs)


def test_a_sweep_without_a_pruner_still_reports_every_trial_curve():
    config = OmegaConf.create({"total_steps": 40_000, "seed": 0})
    settings = {
        "pruner": "none",
        "reports_per_trial": 10,
        "n_trials": 4,
        "sampler": "tpe",
        "seeds_per_trial": 1,
        "aggregate": "mean",
        "poll_s": 0.2,
        "pruner_startup_trials": 5,
    }
    assert _study_settings(settings, config, space=None).report_every == 4_000


@pytest.mark.parametrize("how", ["mean", "iqm"])
def test_each_trial_runs_every_seed_and_takes_their_aggregate(tmp_path, how):
    study = _study(tmp_path)
    launcher, _ = _run(tmp_path, study, n_trials=3, seeds=(0, 1, 2, 3), slots=3, how=how)
    assert len(launcher.started) == 12
    for trial in study.trials:
        jobs = [launcher.started[i] for i in trial.user_attrs["jobs"]]
        assert [dict(o.split("=", 1) for o in ov)["seed"] for _, ov in jobs] == ["0", "1", "2", "3"]
        assert all(f"trial={trial.number}" in ov for _, ov in jobs)
        x = trial.params["x"]
        values = [x + 0.01 * seed for seed in range(4)]
        expected = sum(values) / 4 if how == "mean" else sum(sorted(values)[1:3]) / 2
        assert trial.value == pytest.approx(expected)
        assert trial.user_attrs["values"] == pytest.approx(values)


def test_a_resumed_study_keeps_finished_trials_and_fails_the_one_cut_short(tmp_path):
    study = _study(tmp_path)
    _run(tmp_path, study, n_trials=2)
    first_records = {p: p.read_text() for p in tmp_path.glob("*/job.json")}
    cut_short = study.ask()  # as a sweep stopped hard mid-trial leaves it: RUNNING
    assert cut_short.number == 2
    settings = {
        "sampler": "random",
        "sampler_seed": 0,
        "n_startup_trials": 0,
        "pruner": "none",
        "reports_per_trial": 10,
        "pruner_warmup_reports": 0,
        "pruner_startup_trials": 0,
        "reduction_factor": 3,
        "direction": "maximize",
        "study_name": "a3c",
        "storage": None,
    }
    reopened = open_study(settings, tmp_path, _space("x=interval(0, 1)"), TOTAL)
    assert reopened.trials[2].state == TrialState.FAIL
    assert reopened.trials[2].user_attrs[INTERRUPTED] is True
    launcher, runner = _run(tmp_path, reopened, n_trials=5)
    finished = [t for t in reopened.trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 5 and runner.finished_trials() == 5  # the interrupted one not counted
    assert [idx for idx, _ in launcher.started] == [2, 3, 4]  # job numbers go on
    assert {p: p.read_text() for p in first_records} == first_records  # untouched


def test_a_launcher_without_single_jobs_gets_batches_and_pruning_still_acts(tmp_path):
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=EVERY)
    study = _study(tmp_path, pruner=pruner)
    launcher = ScriptedBatchLauncher(tmp_path)
    settings = StudySettings(8, [0], "mean", EVERY, TOTAL, poll_s=0.001)
    space = _space("x=interval(0, 1)", "env=cartpole")
    StudyRunner(study, space, settings, launcher, tmp_path, first_job=0, slots=2).run()
    assert launcher.batches == [[0, 1], [2, 3], [4, 5], [6, 7]]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and len(study.trials) == 8
    for trial in pruned:
        (idx,) = trial.user_attrs["jobs"]
        assert max(read_reports(tmp_path / str(idx))) < TOTAL  # stopped inside its batch


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "hydra.sweeper.pruner=bogus",
            "hydra.sweeper.pruner='bogus': allowed: median, successive_halving, hyperband, none",
        ),
        (
            "hydra.sweeper.sampler=grid",
            "optim.lr: sampler=grid needs choice(...) or range(...) values, not an interval",
        ),
        (
            "hydra.sweeper.seeds_per_trial=0",
            "hydra.sweeper.seeds_per_trial=0: must be an integer >= 1",
        ),
        ("seed=0,1", "seed: not a search parameter here; use hydra.sweeper.seeds_per_trial=K"),
    ],
)
def test_a_bad_sweeper_setting_is_one_line_before_any_job(tmp_path, override, line):
    import subprocess
    import sys

    from tests.helpers import cli_env

    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "a3c_exp.train", "--multirun", "hydra/sweeper=a3c_optuna"]
    cmd += ["env=cartpole", f"hydra.sweep.dir={sweep_dir}", override]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=cli_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {line}"]
    assert not sweep_dir.exists()  # nothing started, nothing written
