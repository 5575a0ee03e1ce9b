"""The CPUs a run may use, and which of them its workers are pinned to."""

from __future__ import annotations

import os


def allowed_cpus() -> set[int]:
    """CPUs this process may run on (taskset/cgroup affinity where the OS reports it)."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def available_cpus() -> int:
    """How many CPUs this process may run on (the ``${cpu_count:}`` of the configs)."""
    return len(allowed_cpus())


def can_pin() -> bool:
    """Whether this OS lets a process choose its CPUs."""
    return hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity")


def pins_cpus(pin_cpus: bool | str, workers: int, cpus: int) -> bool:
    """Whether workers are pinned to CPUs under the ``pin_cpus`` setting."""
    if pin_cpus == "auto":
        return workers >= cpus
    return bool(pin_cpus)


def worker_cpus(pin_cpus: bool | str, workers: int, explicit: list[int] | None) -> list[int] | None:
    """The CPUs workers are pinned to (worker i: entry i mod len), or None for none.

    An explicit ``worker_cpus`` list wins; otherwise ``pin_cpus`` decides, and pinned workers
    share out every CPU this process may use.
    """
    if explicit is not None:
        return explicit
    if can_pin() and pins_cpus(pin_cpus, workers, available_cpus()):
        return sorted(allowed_cpus())
    return None
