"""Files that are read back later: written whole or not at all, read without trusting them.

Every file a run or a sweep reads back (checkpoints, job records, schedules, summaries, trial
reports, result tables) is written by ``atomic_write_bytes`` / ``atomic_write_text`` (a
temporary file in the same folder, flushed, fsynced, renamed over the old one) or appended by
``append_lines`` (whole lines in one write, flushed and fsynced), so a full disk or a kill leaves
the previous version or nothing, never half a file. ``read_json`` meets an empty or truncated
file with a warning naming it, never an exception.

A write that fails for a reason outside the run's control (no space, a read-only or vanished
directory, no permission) raises ``OSError`` naming the file it was writing, not a temporary
name; ``machine_fault`` tells such an error from the others and words it in one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("a3c_exp")

MACHINE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "directory vanished",
    errno.ENOTDIR: "directory vanished",
    errno.EIO: "input/output error",
}
"""The errors of a write that the machine, not the run, is to blame for, and how to say them."""


def machine_fault(err: BaseException) -> bool:
    """Whether ``err`` is a write that failed for a fault of the machine (``MACHINE_ERRNOS``)."""
    return isinstance(err, OSError) and err.errno in MACHINE_ERRNOS


def fault_line(err: OSError, base: Path | None = None) -> str:
    """``no space left on device writing checkpoints/last.ckpt``: the cause and the file
    (relative to ``base`` when it lies under it)."""
    cause = MACHINE_ERRNOS.get(err.errno or 0, (err.strerror or type(err).__name__).lower())
    name = err.filename
    if name is None:
        return cause
    path = Path(os.fsdecode(name))
    if base is not None:
        with contextlib.suppress(ValueError, OSError):
            path = path.resolve().relative_to(Path(base).resolve())
    return f"{cause} writing {path}"


def _fsync_directory(directory: Path) -> None:
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.fsync(handle)
    os.close(handle)


def atomic_write_bytes(path: Path | str, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` so that any failure leaves the old file (or none) in place.

    The file's folder is created if missing, but not the folders above it: a run directory
    that vanished is a fault to report, not one to paper over by making a new one. Raises
    OSError with ``filename`` the target path when the write or the rename fails; the
    temporary file is removed in every case.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            path.parent.mkdir(exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as err:
            raise OSError(err.errno, err.strerror, str(path)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def atomic_write_text(path: Path | str, text: str) -> None:
    """``atomic_write_bytes`` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def append_lines(path: Path | str, lines: Iterable[str]) -> None:
    """Append whole lines in one write, flushed and fsynced; OSError names ``path``."""
    text = "".join(line.rstrip("\n") + "\n" for line in lines)
    if not text:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None


def read_json(path: Path | str, what: str = "record") -> Any | None:
    """The JSON in ``path``; None, with a warning naming the file, when it is missing parts
    (empty, truncated, not JSON) or cannot be read. A missing file is None without warning."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("%s %s unreadable (%s): left out", what, path, err.strerror or err)
        return None
    try:
        return json.loads(text)
    except ValueError:
        state = "empty" if not text.strip() else "truncated or not JSON"
        log.warning("%s %s unreadable (%s): left out", what, path, state)
        return None
