"""The schema of ``hydra/sweeper=a3c_optuna`` (registered as ``a3c_optuna_schema``)."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

SAMPLERS = ("tpe", "random", "cmaes", "grid")
PRUNERS = ("median", "successive_halving", "hyperband", "none")


@dataclass
class A3COptunaSweeperConf:
    """An Optuna study over a3c-exp's config, one trial = ``seeds_per_trial`` training jobs."""

    _target_: str = "hydra_plugins.a3c_exp_sweeper.sweeper.A3COptunaSweeper"
    direction: str = "maximize"  # maximize or minimize the jobs' objective
    study_name: str = "a3c"
    # null: <sweep dir>/optuna.db (SQLite, reopened to resume); or any Optuna storage URL
    storage: str | None = None
    n_trials: int = 20  # finished trials (completed, pruned or failed) the study ends with
    # jobs running at once; null = the launcher's own bound (parallel_local: CPUs // workers)
    n_jobs: int | None = None
    # each sampled config runs with this many seeds (seed, seed+1, ...: independent streams)
    seeds_per_trial: int = 1
    aggregate: str = "mean"  # a trial's value from its seeds' values: mean or iqm
    sampler: str = "tpe"  # tpe, random, cmaes or grid (grid: choice/range params only)
    sampler_seed: int | None = 0  # the sampler's seed; null = a fresh one each sweep
    n_startup_trials: int = 5  # tpe, cmaes: random trials before the model takes over
    pruner: str = "median"  # median, successive_halving, hyperband or none
    # each job reports its running objective this many times over total_steps, at the same env
    # steps in every trial (total_steps * k / reports_per_trial): pruners compare those
    reports_per_trial: int = 10
    # the study's first trials are never pruned (as many as TPE's random startup trials: its
    # model and the median start from their full curves); median: also the finished trials
    # it waits for before pruning any
    pruner_startup_trials: int = 5
    # median: reports a trial makes before it can be pruned (its warm-up);
    # successive_halving, hyperband: reports before the first rung
    pruner_warmup_reports: int = 1
    reduction_factor: int = 3  # successive_halving, hyperband: 1 / this of trials go on a rung
    poll_s: float = 0.2  # seconds between two looks at the running jobs
    # key: a sweep in Hydra's grammar (choice, range, interval, tag(log, interval))
    params: dict[str, Any] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="a3c_optuna_schema",
    node=A3COptunaSweeperConf,
    provider="a3c_exp",
)
