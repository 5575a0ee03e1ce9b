"""Make writes under one folder fail as a full or read-only disk would, for ``scripts/faults.py``.

Imported at interpreter start by every Python process of a case (the run, its fork server and
workers, the sweep's jobs) when this folder is on ``PYTHONPATH``; it does nothing unless
``A3C_FAULT_ROOT`` is set. Then, once the file ``A3C_FAULT_TRIGGER`` exists (or at once when
it is not set), opening a file for writing under ``A3C_FAULT_ROOT`` raises the ``OSError``
that ``A3C_FAULT_MODE`` names: ``enospc`` (no space left on device) or ``erofs`` (read-only
file system). Used where the cases cannot mount a small tmpfs (not root).
"""

from __future__ import annotations

import builtins
import errno
import io
import os

_ROOT = os.environ.get("A3C_FAULT_ROOT")
if _ROOT:
    _ROOT = os.path.abspath(_ROOT)
    _TRIGGER = os.environ.get("A3C_FAULT_TRIGGER")
    _MODE = os.environ.get("A3C_FAULT_MODE", "enospc")
    _CODE = {"enospc": errno.ENOSPC, "erofs": errno.EROFS}[_MODE]
    _open = builtins.open

    def _faulty_open(file, mode="r", *args, **kwargs):
        writing = isinstance(mode, str) and any(flag in mode for flag in "wax+")
        if writing and isinstance(file, str | bytes | os.PathLike):
            path = os.path.abspath(os.fsdecode(file))
            armed = _TRIGGER is None or os.path.exists(_TRIGGER)
            if armed and path.startswith(_ROOT + os.sep):
                raise OSError(_CODE, os.strerror(_CODE), path)
        return _open(file, mode, *args, **kwargs)

    builtins.open = _faulty_open
    io.open = _faulty_open
