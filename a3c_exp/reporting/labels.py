"""Short names for the jobs of a sweep, built from what differs between them.

A sweep's jobs share most of their overrides (``env=cartpole workers=1 ...``); a legend that
repeats them, with Optuna's 17-digit floats, hides the plots it explains. Here the overrides
are split into what all jobs share (a figure title) and what varies (each job's label), with
short key names and numbers to 3 significant figures: ``lr=2.08e-3 ent=0.0244 λ=0.938``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from a3c_exp.overrides import ABBREVIATIONS

# Plot labels can use the paper's symbols where the run-name abbreviations must stay ASCII.
LABEL_NAMES = {**ABBREVIATIONS, "gae_lambda": "λ", "gamma": "γ"}
# Keys that change how a run is reported, not what it learns: left out of titles and labels.
REPORTING_KEYS = (
    "logger",
    "log_every",
    "video_every",
    "checkpoint_every",
    "hydra",
    "trial",
    "trial_report_every",
)
MISSING = "default"  # shown for a key that some jobs set and others leave at its default


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """``["optim.lr=0.001", ...]`` as ``{"optim.lr": "0.001"}``, reporting keys left out."""
    parsed = {}
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.split(".")[0] not in REPORTING_KEYS:
            parsed[key] = value
    return parsed


def split_overrides(
    jobs: Sequence[Sequence[str]],
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(overrides every job shares, each job's overrides that differ), keys in first-seen order."""
    parsed = [parse_overrides(job) for job in jobs]
    keys = list(dict.fromkeys(key for job in parsed for key in job))
    shared = {
        key: parsed[0][key]
        for key in keys
        if all(key in job and job[key] == parsed[0][key] for job in parsed)
    }
    varying = [{key: job.get(key, MISSING) for key in keys if key not in shared} for job in parsed]
    return shared, varying


def format_value(value: str) -> str:
    """A number to 3 significant figures (``2.08e-3``, ``0.0244``, ``30``); text as it is."""
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number) or ("." not in value and "e" not in value.lower()):
        return value  # integers and inf/nan read best as written
    if number == 0 or 1e-2 <= abs(number) < 1e3:
        return f"{number:.3g}"
    if 1e3 <= abs(number) < 1e5:  # 3000.0, not 3e+03
        return str(round(number))
    mantissa, _, exponent = f"{number:.2e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key's short name (``loss.entropy_coef`` -> ``ent``), unique among ``keys``."""
    names = {key: LABEL_NAMES.get(key.split(".")[-1], key.split(".")[-1]) for key in keys}
    clashing = {name for name in names.values() if list(names.values()).count(name) > 1}
    return {key: key if name in clashing else name for key, name in names.items()}


def describe(overrides: dict[str, str], names: dict[str, str] | None = None) -> str:
    """``{"optim.lr": "0.00208", "loss.gae_lambda": "0.9383"}`` as ``lr=2.08e-3 λ=0.938``."""
    names = names or short_names(list(overrides))
    return " ".join(f"{names[key]}={format_value(value)}" for key, value in overrides.items())


def sweep_labels(jobs: Sequence[Sequence[str]]) -> tuple[str, list[str]]:
    """(title from the shared overrides, one label per job from the varying ones)."""
    shared, varying = split_overrides(jobs)
    names = short_names([*shared, *(varying[0] if varying else {})])  # one name a key, everywhere
    return describe(shared, names), [describe(job, names) for job in varying]
