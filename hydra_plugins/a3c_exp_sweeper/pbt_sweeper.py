"""``hydra/sweeper=a3c_pbt``: population-based training over a3c-exp's training jobs.

A thin Hydra plugin beside ``a3c_optuna``: it checks its settings (one line each, before any
job starts), turns ``params`` and the command line's sweeps into the search space (the same
grammar), and hands over to ``PBTRunner`` (``_pbt.py``), which runs the population on the
launcher's job slots.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from a3c_exp.files import atomic_write_text

from .sweeper import LaunchingSweeper, SweepConfigError, job_slots, parse_search_space

log = logging.getLogger(__name__)


class A3CPBTSweeper(LaunchingSweeper):
    """Asynchronous population-based training with exploit, explore, lineage and resume."""

    def sweep(self, arguments: list[str]) -> None:
        """Run the population until every member has trained its env steps."""
        from a3c_exp.sweep import sweep_group

        from ._pbt import PBTRunner, PBTSettings
        from .sweeper import next_job_number

        assert self.config is not None and self.hydra_context is not None
        settings = self.settings
        check_settings(settings)
        space = parse_search_space(settings, self.hydra_context, arguments)
        for reserved in ("seed", "total_steps", "resume"):
            if reserved in space.distributions:
                raise SweepConfigError(f"{reserved}: set by the PBT sweeper for each member")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        logger = self.config.get("logger") or {}
        wandb = logger.get("wandb") if hasattr(logger, "get") else None
        group = (wandb.get("group") if wandb is not None else None) or sweep_group(sweep_dir)
        runner = PBTRunner(
            space=space,
            settings=PBTSettings(
                population=int(settings["population"]),
                ready_every=int(settings["ready_every"]),
                total_steps=int(self.config.total_steps),
                quantile=float(settings["quantile"]),
                perturb_factors=[float(f) for f in settings["perturb_factors"]],
                resample_probability=float(settings["resample_probability"]),
                margin=float(settings["margin"]),
                warmup_intervals=int(settings["warmup_intervals"]),
                direction=settings["direction"],
                seed=int(settings["seed"]),
                poll_s=float(settings["poll_s"]),
                wandb=wandb is not None,
                group=str(group),
            ),
            launcher=self.launcher,
            sweep_dir=sweep_dir,
            first_job=next_job_number(sweep_dir),
            slots=job_slots(settings, self.launcher, space),
        )
        log.info(
            f"population of {len(runner.members)} in {sweep_dir}, {runner.slots} job slots, "
            f"ready every {runner.settings.ready_every:,} env steps"
        )
        runner.run()


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse, in one line each, settings PBT cannot run with."""

    def check(ok: bool, key: str, allowed: str) -> None:
        if not ok:
            raise SweepConfigError(f"hydra.sweeper.{key}={settings.get(key)!r}: {allowed}")

    check(settings["direction"] in ("maximize", "minimize"), "direction", "maximize or minimize")
    check(int(settings["population"]) >= 2, "population", "must be an integer >= 2")
    check(int(settings["ready_every"]) >= 1, "ready_every", "must be an integer >= 1 (env steps)")
    check(0 < float(settings["quantile"]) <= 0.5, "quantile", "must be in (0, 0.5]")
    factors = list(settings["perturb_factors"] or [])
    check(
        bool(factors) and all(float(f) > 0 for f in factors),
        "perturb_factors",
        "must be a non-empty list of numbers > 0",
    )
    check(0 <= float(settings["resample_probability"]) <= 1, "resample_probability", "in [0, 1]")
    check(float(settings["margin"]) >= 0, "margin", "must be >= 0 (objective units)")
    check(int(settings["warmup_intervals"]) >= 0, "warmup_intervals", "must be an integer >= 0")
    check(settings.get("n_jobs") is None or settings["n_jobs"] >= 1, "n_jobs", ">= 1 or null")
