"""Find a run's worker processes from outside (benchmarks, chaos and soak scripts, tests)."""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import psutil


class TreeMemory(NamedTuple):
    """Bytes of a process tree: resident, unique to it, and its proportional share."""

    rss: int  # resident, shared pages counted in full in every process that maps them
    uss: int  # unique: what the machine gets back when the tree exits
    pss: int  # proportional: each shared page split between the processes that map it, so
    # the workers' PSS add up to what they cost the machine together


def worker_processes(main_pid: int) -> list[psutil.Process]:
    """The worker processes of the training run whose main process is ``main_pid``.

    With ``start_method=spawn`` they are children of the main process running multiprocessing's
    ``spawn_main``; with ``forkserver`` they are the children of the fork server. Neither the
    fork server nor multiprocessing's resource tracker is a worker. Sorted by pid.
    """
    workers = []
    for child in psutil.Process(main_pid).children():
        try:
            command = " ".join(child.cmdline())
            if "spawn_main" in command:
                workers.append(child)
            elif "forkserver" in command:
                workers.extend(child.children())
        except psutil.Error:  # exited while we looked
            continue
    return sorted(workers, key=lambda process: process.pid)


def tree_memory(process: psutil.Process) -> TreeMemory:
    """RSS, USS and PSS of a process with all its descendants (a worker and its ViZDoom
    engines); members that exit while being read are skipped."""
    rss, uss, pss = 0, 0, 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            info = member.memory_full_info()
            rss += info.rss
            uss += info.uss
            pss += info.pss
    return TreeMemory(rss, uss, pss)
