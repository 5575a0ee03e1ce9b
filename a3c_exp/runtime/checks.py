"""Everything checked before a run starts, each part on its own section, in one ``validate``.

The entry points call ``validate`` after ``load_config`` (which checked the config's own
rules): the environment checks its section (``a3c_exp.envs.checks``), the network its own and
the frames it will get (``a3c_exp.models.shapes``), the runtime its backend here. None of it
imports torch or opens an environment, so bad input is refused in about a second, in one line.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from a3c_exp.config import (
    ConfigError,
    RayRuntimeConfig,
    TargetConfig,
    TrainConfig,
    WandbConfig,
    check,
    load_config,
    loss_terms,
)
from a3c_exp.envs.checks import check_env, frame_side
from a3c_exp.models.shapes import check_model
from a3c_exp.runtime.cpus import allowed_cpus


def validate(cfg: TrainConfig) -> TrainConfig:
    """Let each part check its section of an already loaded config; return ``cfg`` unchanged.

    Raises ConfigError (one line: field, value, what is allowed) on the first bad value.
    """
    check_runtime(cfg)
    check_env(cfg.env)
    check_model(cfg.model, frame_side(cfg.env))
    check_extensions(cfg)
    return cfg


def check_extensions(cfg: TrainConfig) -> None:
    """The loss terms and the metric sinks: each class importable, of its kind, and taking the
    keys of its section (``a3c_exp.config.targets``); W&B online only with credentials."""
    if cfg.intrinsic is not None or cfg.aux:
        from a3c_exp.algo.terms import term_class

        for key, term in loss_terms(cfg):
            term_class(term, key)
    yours = {name: sink for name, sink in cfg.logger.items() if isinstance(sink, TargetConfig)}
    if yours:  # the built-in sinks' keys are their typed sections' (a test holds them equal)
        from a3c_exp.reporting.sinks import check_sinks

        check_sinks(yours)
    wandb = cfg.logger.get("wandb")
    if isinstance(wandb, WandbConfig):
        from a3c_exp.reporting.wandb_sink import check_wandb_mode

        check_wandb_mode(wandb.mode)


def load_validated(composed: DictConfig | Mapping[str, Any]) -> TrainConfig:
    """``load_config`` then ``validate``: a composed config, checked as a run checks it."""
    return validate(load_config(composed))


def check_runtime(cfg: TrainConfig) -> None:
    """The backend can run here: worker CPUs this process may use, Ray installed and reachable."""
    explicit = getattr(cfg.runtime, "worker_cpus", None)  # runtime=local only
    if explicit is not None:
        cpus = sorted(allowed_cpus())
        check(
            len(explicit) > 0 and all(c in cpus for c in explicit),
            "runtime.worker_cpus",
            explicit,
            f"must be a non-empty list of CPUs this process may use: {cpus}, or null",
        )
    if cfg.runtime.kind == "ray":
        _check_ray(cfg.runtime)


def _check_ray(runtime: RayRuntimeConfig) -> None:
    from a3c_exp.runtime.cluster import UnreachableCluster, check_ray_address

    check(
        importlib.util.find_spec("ray") is not None,
        "runtime",
        "ray",
        "needs Ray, which is not installed: pip install -c constraints.txt -e '.[ray]'",
    )
    try:
        check_ray_address(runtime.address)
    except UnreachableCluster as err:
        raise ConfigError(str(err)) from None


def check_writable(directory: Path) -> None:
    """Fail before spawning if the run directory cannot take files."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise ConfigError(
            f"output directory {str(directory)!r}: not writable ({err.strerror})"
        ) from None
