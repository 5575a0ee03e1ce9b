"""Statistics over the seeds of one config: mean, IQM and a 95% bootstrap interval.

RL results swing from seed to seed, so a sweep that runs a config with several seeds reports
how many ran (n), their mean, their interquartile mean (IQM: the mean of the middle half,
``scipy.stats.trim_mean(values, 0.25)``, robust to one lucky or failed seed) and a 95%
percentile-bootstrap interval of the mean (``scipy.stats.bootstrap``), as rliable recommends.
With one seed there is no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

AGGREGATES = ("mean", "iqm")
"""How a trial's value is made from its seeds' values (``hydra.sweeper.aggregate``)."""
CONFIDENCE = 0.95
RESAMPLES = 2000


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean after cutting the lowest and highest quarter."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float), 0.25))


def aggregate(values: Sequence[float], how: str) -> float:
    """The ``mean`` or ``iqm`` of ``values`` (nan when there are none)."""
    if not values:
        return math.nan
    if how == "iqm":
        return iqm(values)
    if how == "mean":
        return float(np.mean(values))
    raise ValueError(f"aggregate={how!r}: allowed: {', '.join(AGGREGATES)}")


def mean_interval(values: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """95% percentile-bootstrap interval of the mean over axis 0 (seeds); None below 2 seeds.

    ``values`` may be (seeds,) or (seeds, points): each point gets its own interval, so a
    learning curve gets a band.
    """
    from scipy.stats import bootstrap

    values = np.asarray(values, dtype=float)
    if values.shape[0] < 2:
        return None
    if np.all(values == values[:1]):  # no spread: the interval is the value itself
        return values[0].copy(), values[0].copy()
    result = bootstrap(
        (values,),
        np.mean,
        axis=0,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return np.asarray(low), np.asarray(high)


@dataclass(frozen=True)
class SeedStats:
    """One config's objective over its seeds."""

    n: int
    mean: float
    iqm: float
    ci_low: float | None
    ci_high: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> SeedStats:
        """The statistics of ``values`` (finite ones only: a failed seed has none)."""
        finite = [float(v) for v in values if v is not None and math.isfinite(v)]
        interval = mean_interval(np.asarray(finite)) if len(finite) >= 2 else None
        return cls(
            n=len(finite),
            mean=aggregate(finite, "mean"),
            iqm=aggregate(finite, "iqm"),
            ci_low=float(interval[0]) if interval else None,
            ci_high=float(interval[1]) if interval else None,
        )
