"""``hydra/sweeper=a3c_optuna``: an Optuna study whose trials are a3c-exp training jobs.

A thin Hydra plugin: it checks its settings (one line each, before any job starts), opens or
reopens the study in the sweep directory, turns the ``params`` and the command line's sweeps
into a search space, and hands over to ``StudyRunner``, which runs the trials.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from a3c_exp.files import atomic_write_text

from .config import PRUNERS, SAMPLERS

log = logging.getLogger(__name__)

STUDY_FILE = "optuna.db"


class SweepConfigError(HydraException):
    """A sweeper setting that cannot work; the message is one line naming it."""


class LaunchingSweeper(Sweeper):
    """A sweeper of this project: its settings, Hydra's context and the launcher it runs on."""

    def __init__(self, **settings: Any):
        self.settings = settings
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep the context and build the launcher, as every Hydra sweeper does."""
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )


class A3COptunaSweeper(LaunchingSweeper):
    """Optuna search with pruning, busy slots, seeds per trial and resume (see study_runner)."""

    def sweep(self, arguments: list[str]) -> None:
        """Run the study until ``n_trials`` trials have finished."""
        from a3c_exp.files import machine_fault

        from ._slots import STUDY_WRITE_ERRORS, study_fault_line
        from ._study_runner import StudyRunner

        assert self.config is not None and self.hydra_context is not None
        settings = self.settings
        _check_settings(settings)
        space = self._search_space(arguments)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_text(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
            study = open_study(settings, sweep_dir, space, int(self.config.total_steps))
        except STUDY_WRITE_ERRORS as err:
            if isinstance(err, OSError) and not machine_fault(err):
                raise
            raise SweepConfigError(study_fault_line(err, sweep_dir)) from None
        runner = StudyRunner(
            study,
            space,
            _study_settings(settings, self.config, space),
            self.launcher,
            sweep_dir,
            first_job=next_job_number(sweep_dir),
            slots=self._slots(space),
        )
        done = runner.finished_trials()
        if done:
            log.info(f"resuming study {study.study_name!r}: {done} trials finished before")
        log.info(f"study in {sweep_dir / STUDY_FILE}, {runner.slots} job slots")
        runner.run()
        try:
            write_results(study, sweep_dir)
        except OSError as err:
            log.warning(f"optimization_results.yaml not written: {err}")

    def _search_space(self, arguments: list[str]) -> Any:
        from ._search_space import SearchSpaceError

        assert self.hydra_context is not None
        space = parse_search_space(self.settings, self.hydra_context, arguments)
        if "seed" in space.distributions:
            raise SweepConfigError(
                "seed: not a search parameter here; use hydra.sweeper.seeds_per_trial=K"
            )
        if self.settings["sampler"] == "grid":
            try:
                space.grid()
            except SearchSpaceError as err:
                raise SweepConfigError(str(err)) from None
        return space

    def _slots(self, space: Any) -> int:
        return job_slots(self.settings, self.launcher, space)


def parse_search_space(settings: dict[str, Any], hydra_context: Any, arguments: list[str]) -> Any:
    """The ``params`` and the command line's sweeps as a search space (fixed overrides apart);
    SweepConfigError in one line when there is nothing to search or a sweep cannot be."""
    from ._search_space import SearchSpaceError, search_space

    params = settings.get("params") or {}
    lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
    parser = OverridesParser.create(config_loader=hydra_context.config_loader)
    try:
        space = search_space(parser.parse_overrides(lines))
    except SearchSpaceError as err:
        raise SweepConfigError(str(err)) from None
    if not space.distributions:
        raise SweepConfigError(
            "hydra.sweeper.params: nothing to search (give params or a sweep such as "
            "'optim.lr=tag(log, interval(1e-4, 1e-2))')"
        )
    return space


def job_slots(settings: dict[str, Any], launcher: Any, space: Any) -> int:
    """Jobs at once: ``n_jobs``, else the launcher's own bound, else 1."""
    if settings.get("n_jobs"):
        return int(settings["n_jobs"])
    if hasattr(launcher, "job_slots"):
        return int(launcher.job_slots(space.fixed))
    return 1


def _check_settings(settings: dict[str, Any]) -> None:
    def check(ok: bool, key: str, allowed: str) -> None:
        if not ok:
            raise SweepConfigError(f"hydra.sweeper.{key}={settings.get(key)!r}: {allowed}")

    check(settings["direction"] in ("maximize", "minimize"), "direction", "maximize or minimize")
    check(settings["sampler"] in SAMPLERS, "sampler", f"allowed: {', '.join(SAMPLERS)}")
    check(settings["pruner"] in PRUNERS, "pruner", f"allowed: {', '.join(PRUNERS)}")
    check(settings["aggregate"] in ("mean", "iqm"), "aggregate", "allowed: mean, iqm")
    for key in ("n_trials", "seeds_per_trial", "reports_per_trial", "reduction_factor"):
        check(int(settings[key]) >= 1, key, "must be an integer >= 1")
    for key in ("pruner_startup_trials", "pruner_warmup_reports", "n_startup_trials"):
        check(int(settings[key]) >= 0, key, "must be an integer >= 0")
    check(settings["reduction_factor"] >= 2, "reduction_factor", "must be an integer >= 2")
    check(settings.get("n_jobs") is None or settings["n_jobs"] >= 1, "n_jobs", ">= 1 or null")


def _study_settings(settings: dict[str, Any], config: DictConfig, space: Any) -> Any:
    from ._study_runner import StudySettings

    total_steps = int(config.total_steps)
    # reports with every pruner, none too: the study's intermediate values then hold every
    # trial's curve (optuna-dashboard draws them; scripts/replay_pruners.py replays them)
    report_every = max(1, total_steps // int(settings["reports_per_trial"]))
    n_trials = int(settings["n_trials"])
    if settings["sampler"] == "grid":
        size = 1
        for values in space.grid().values():
            size *= len(values)
        n_trials = min(n_trials, size)
    first_seed = int(config.seed)
    return StudySettings(
        n_trials=n_trials,
        seeds=[first_seed + k for k in range(int(settings["seeds_per_trial"]))],
        aggregate=settings["aggregate"],
        report_every=report_every,
        total_steps=total_steps,
        poll_s=float(settings["poll_s"]),
        full_trials=int(settings["pruner_startup_trials"]),
    )


def make_sampler(settings: dict[str, Any], space: Any) -> Any:
    """The Optuna sampler named by ``hydra.sweeper.sampler``."""
    import optuna

    name, seed = settings["sampler"], settings.get("sampler_seed")
    startup = int(settings["n_startup_trials"])
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.GridSampler(space.grid(), seed=seed)


def make_pruner(settings: dict[str, Any], total_steps: int) -> Any:
    """The Optuna pruner named by ``hydra.sweeper.pruner``, its steps in env steps."""
    import optuna

    name = settings["pruner"]
    every = max(1, total_steps // int(settings["reports_per_trial"]))
    warmup = int(settings["pruner_warmup_reports"])
    if name == "median":
        # reports at steps every, 2*every, ...: prunable from report warmup+1 on
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(settings["pruner_startup_trials"]),
            n_warmup_steps=(warmup + 1) * every,
        )
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, warmup) * every,
            reduction_factor=int(settings["reduction_factor"]),
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, warmup) * every,
            max_resource=total_steps,
            reduction_factor=int(settings["reduction_factor"]),
        )
    return optuna.pruners.NopPruner()


def storage_url(settings: dict[str, Any], sweep_dir: Path) -> str:
    """``hydra.sweeper.storage``, or the sweep directory's own SQLite file."""
    return settings.get("storage") or f"sqlite:///{sweep_dir / STUDY_FILE}"


def open_study(settings: dict[str, Any], sweep_dir: Path, space: Any, total_steps: int) -> Any:
    """Create the study, or reopen it to resume; trials cut short are failed, interrupted."""
    import optuna

    from ._study_runner import mark_interrupted

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage_url(settings, sweep_dir),
        sampler=make_sampler(settings, space),
        pruner=make_pruner(settings, total_steps),
        study_name=settings["study_name"],
        direction=settings["direction"],
        load_if_exists=True,
    )
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        log.warning(f"trial {trial.number}: cut short by the last stop; marked failed")
        mark_interrupted(study, trial.number)
    return study


def next_job_number(sweep_dir: Path) -> int:
    """One past the highest job number in the sweep directory (0 in a new one)."""
    numbers = [int(p.name) for p in Path(sweep_dir).iterdir() if p.is_dir() and p.name.isdigit()]
    return max(numbers, default=-1) + 1


def write_results(study: Any, sweep_dir: Path) -> None:
    """``optimization_results.yaml``: the best trial's params and value, and the trial counts."""
    from optuna.trial import TrialState

    counts = {
        state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    results: dict[str, Any] = {"name": "optuna", "trials": counts}
    if counts["complete"]:
        results.update(best_params=study.best_params, best_value=study.best_value)
        log.info(f"best value {study.best_value:.4g}: {study.best_params}")
    text = OmegaConf.to_yaml(OmegaConf.create(results))
    atomic_write_text(sweep_dir / "optimization_results.yaml", text)
