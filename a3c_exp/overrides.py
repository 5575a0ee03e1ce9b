"""Command-line overrides: one-line composition errors, and run names built from overrides."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "conf"
GROUPS = ("env", "model", "loss", "optim", "logger", "experiment")

ABBREVIATIONS = {
    "entropy_coef": "ent",
    "value_coef": "vf",
    "gae_lambda": "lam",
    "gamma": "g",
    "lr": "lr",
    "rollout_len": "n",
    "envs_per_worker": "envs",
    "max_grad_norm": "clip",
    "seed": "s",
    "total_steps": "steps",
}


def group_options(group: str) -> list[str]:
    """The options this package ships for a config group: the yaml files in ``conf/<group>/``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def composition_error_line(err: BaseException) -> str | None:
    """One line for an error Hydra raised while parsing overrides or composing; else None.

    Hydra itself parses the command line (its whole override and sweep grammar) and looks
    options up on its search path (``--config-dir`` and ``hydra.searchpath`` included); this
    only shortens what it reports to the line a user needs.
    """
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options:
        group, _, option = str(err.missing_cfg_file).rpartition("/")
        if group:
            return f"{group}={option!r}: unknown {group} option; allowed: {', '.join(err.options)}"
    if isinstance(err, OverrideParseException):
        return f"{err.override}: {str(err).strip().splitlines()[0]} (Hydra's override grammar)"
    if not isinstance(err, HydraException | OmegaConfBaseException):
        return None
    not_a_key = _not_a_key_of_the_schema(err)
    if not_a_key is not None:
        return not_a_key
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException | HydraException):
        lines.append(str(cause).strip().splitlines()[0])
    keep = [
        line
        for line in lines
        if not line.startswith(
            ("full_key:", "object_type=", "reference_type=", "Config search", "See https://")
        )
    ]
    return " ".join(keep[:3]) if keep else type(err).__name__


def _not_a_key_of_the_schema(err: BaseException) -> str | None:
    """``key=value: not a key of <Section>; allowed: ...`` for an override of a key the chosen
    section's schema does not have (``runtime=local runtime.address=auto``), else None."""
    import dataclasses
    import re

    cause = err.__cause__
    schema = getattr(cause, "object_type", None)
    given = re.search(r"use \+(\S+)", str(err))
    if not (dataclasses.is_dataclass(schema) and given and getattr(cause, "full_key", None)):
        return None
    keys = ", ".join(field.name for field in dataclasses.fields(schema))
    line = f"{given.group(1)}: not a key of {schema.__name__}; allowed: {keys}"
    moved = MOVED_KEYS.get(given.group(1).partition("=")[0])
    return f"{line} (it is {moved} now)" if moved else line


MOVED_KEYS = {
    "start_method": "runtime.start_method",
    "pin_cpus": "runtime.pin_cpus",
    "worker_cpus": "runtime.worker_cpus",
    "lock_optimizer_step": "runtime.lock_optimizer_step",
}
"""Top-level keys that moved into a section: a refusal names the new key (runtime=local only)."""


def run_name(env_name: str, workers: int, task_overrides: Sequence[str]) -> str:
    """A readable run name from the job's overrides, e.g. ``doom-w8-ent0.01``."""
    parts = [env_name, f"w{workers}"]
    for override in task_overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in ("env", "workers", "logger") or key.startswith(("logger.", "hydra")):
            continue
        if key in GROUPS:  # a config option names itself: model=mlp -> "mlp"
            parts.append(value)
            continue
        leaf = key.split(".")[-1]
        parts.append(f"{ABBREVIATIONS.get(leaf, leaf)}{value}")
    return "-".join(parts)


def train_command(run_dir: Path | str, *overrides: str) -> list[str]:
    """The command line of a training job in ``run_dir`` (for scripts that launch runs)."""
    import sys

    return [sys.executable, "-m", "a3c_exp.train", f"hydra.run.dir={run_dir}", *overrides]
