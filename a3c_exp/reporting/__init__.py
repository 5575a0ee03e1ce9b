"""Reporting: the main process's view of a run (statistics, console, CSV curves, W&B).

The main process is the only reader of the workers' statistics queue and the only writer of
console output, metric files and the W&B run.

The names below are imported on first use (PEP 562), so reading a light submodule such as
``labels`` does not import torch: a bad command line is refused in well under a second.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CSVSink": "sinks",
    "CompositeSink": "sinks",
    "MetricsSink": "sinks",
    "NullSink": "sinks",
    "build_sinks": "sinks",
    "RunStats": "stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
