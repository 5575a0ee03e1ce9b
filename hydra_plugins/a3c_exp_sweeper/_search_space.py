"""Hydra's sweep grammar as an Optuna search space.

The ``params:`` of ``hydra/sweeper=a3c_optuna`` (and sweeps given on the command line) use the
grammar of Hydra's own Optuna sweeper, turned into current Optuna distributions:

* ``choice(a, b, c)`` or ``a,b,c``: categorical (numbers stay numbers, so plots sort them);
* ``range(start, stop[, step])``: integers (or floats) from ``start`` up to, not including,
  ``stop``, as Hydra's ``range`` means (and the basic sweeper runs);
* ``interval(low, high)``: uniform floats (integers when both ends are integers);
* ``tag(log, interval(low, high))``: log-uniform.

Anything else is a fixed override, passed to every job unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


class SearchSpaceError(ValueError):
    """A sweep parameter this sweeper cannot search; the message is one line."""


@dataclass
class SearchSpace:
    """The distributions to sample, the overrides every job gets, and how to spell a value."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)
    spelled: dict[str, dict[Any, str]] = field(default_factory=dict)  # choice value -> text

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """The job overrides of one sample: the fixed ones, then ``key=value`` per parameter."""
        sampled = []
        for key, value in params.items():
            text = self.spelled.get(key, {}).get(value)
            sampled.append(f"{key}={text if text is not None else _spell(value)}")
        return [*self.fixed, *sampled]

    def grid(self) -> dict[str, list[Any]]:
        """The values of every parameter, for Optuna's GridSampler (categoricals only)."""
        grid = {}
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                grid[key] = list(dist.choices)
            elif isinstance(dist, IntDistribution) and not dist.log:  # a range(...)
                grid[key] = list(range(dist.low, dist.high + 1, dist.step))
            else:
                raise SearchSpaceError(
                    f"{key}: sampler=grid needs choice(...) or range(...) values, not an interval"
                )
        return grid


def _spell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


def _typed(text: str) -> Any:
    """A choice's text as the number it spells (``"10"`` -> 10), else the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def search_space(overrides: list[Override]) -> SearchSpace:
    """Split parsed overrides into distributions (the sweeps) and fixed overrides."""
    space = SearchSpace()
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            space.fixed.append(f"{key}={override.get_value_element_as_str()}")
            continue
        if key in space.distributions:
            raise SearchSpaceError(f"{key}: swept twice (in params and on the command line?)")
        space.distributions[key] = _distribution(override, key, space)
    return space


def _distribution(override: Override, key: str, space: SearchSpace) -> BaseDistribution:
    value = override.value()
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        low, high, log = value.start, value.end, "log" in value.tags
        if low is None or high is None or not low < high:
            raise SearchSpaceError(f"{key}=interval({low}, {high}): needs low < high")
        if log and low <= 0:
            raise SearchSpaceError(f"{key}: tag(log, interval({low}, {high})) needs low > 0")
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    if override.is_range_sweep() and not override.value().shuffle:
        assert isinstance(value, RangeSweep)
        numbers = list(override.sweep_iterator())
        if not numbers:
            raise SearchSpaceError(f"{key}: range({value.start}, {value.stop}) is empty")
        if all(isinstance(n, int) for n in numbers) and len(numbers) > 1:
            return IntDistribution(numbers[0], numbers[-1], step=numbers[1] - numbers[0])
    if override.is_discrete_sweep():  # choice(...), a,b,c, a shuffled range, a float range
        texts = list(override.sweep_string_iterator())
        typed = [_typed(text) for text in texts]
        space.spelled[key] = dict(zip(typed, texts, strict=True))
        return CategoricalDistribution(typed)
    raise SearchSpaceError(f"{key}={override.input_line}: not a sweep this sweeper can search")
