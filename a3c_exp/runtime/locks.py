"""A cross-process lock that cannot outlive its holder.

A ``multiprocessing.Lock`` held by a worker that is killed (``kill -9``, out of memory) stays
held forever, and every other worker then blocks on it. ``flock`` locks belong to an open file
description, and the kernel releases them when the holder's process dies, so a killed worker
can never freeze the run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any


class FileLock:
    """Exclusive lock on a file (``with lock: ...``); picklable, opened lazily per process."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._fd: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._fd = None

    def __enter__(self) -> FileLock:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
