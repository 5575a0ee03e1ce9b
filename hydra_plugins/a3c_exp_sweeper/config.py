"""The schemas of ``hydra/sweeper=a3c_optuna`` and ``hydra/sweeper=a3c_pbt`` (registered as
``a3c_optuna_schema`` and ``a3c_pbt_schema``)."""

from dataclasses import dataclass, field
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


@dataclass
class A3CPBTSweeperConf:
    """Population-based training: ``population`` members train at once; at each ready point a
    member that is behind copies one that is ahead (exploit) and perturbs its hyperparameters
    (explore). A member's interval is a training job resumed from its last checkpoint."""

    _target_: str = "hydra_plugins.a3c_exp_sweeper.pbt_sweeper.A3CPBTSweeper"
    direction: str = "maximize"  # maximize or minimize the jobs' objective
    population: int = 4  # members; each trains total_steps env steps of its own
    # env steps of its own a member trains between two ready points (exploit/explore)
    ready_every: int = 100_000
    # a member in the bottom quantile of the latest scores copies one of the top quantile
    quantile: float = 0.25
    perturb_factors: list[float] = field(default_factory=lambda: [0.8, 1.25])
    resample_probability: float = 0.25  # a copied value is drawn afresh instead of perturbed
    # a member is replaced only by one whose score is better by more than this (objective units)
    margin: float = 0.0
    # ready points at which a member is not yet replaced: slow starters get to start
    warmup_intervals: int = 1
    seed: int = 0  # the sweep's seed: initial values, perturbations, members' seeds
    # jobs running at once; null = the launcher's own bound (parallel_local: CPUs // workers)
    n_jobs: int | None = None
    poll_s: float = 0.2  # seconds between two looks at the running jobs
    # key: a sweep in Hydra's grammar (choice, range, interval, tag(log, interval))
    params: dict[str, Any] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="a3c_pbt_schema",
    node=A3CPBTSweeperConf,
    provider="a3c_exp",
)
