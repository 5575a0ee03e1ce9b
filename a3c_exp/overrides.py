"""Checks on command-line overrides before Hydra composes, and run names built from them."""

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
    """The options of a config group: the yaml files in ``conf/<group>/``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def check_group_overrides(args: Sequence[str]) -> str | None:
    """Return a one-line error for the first ``group=option`` naming no such option, else None."""
    for arg in args:
        if "=" not in arg or arg.startswith("-") or arg.startswith("hydra"):
            continue
        key, _, value = arg.lstrip("+~").partition("=")
        if key not in GROUPS:
            continue
        options = group_options(key)
        for option in value.split(","):
            if option and option != "null" and option not in options:
                return f"{key}={option!r}: unknown {key} config; allowed: {', '.join(options)}"
    return None


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
