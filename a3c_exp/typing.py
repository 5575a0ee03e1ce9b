"""Type aliases shared across the package, so signatures say what flows where."""

from __future__ import annotations

from typing import Any

import torch

Metrics = dict[str, float]
"""Scalar metrics keyed by their reporting name (``Perf/Reward``, ``Losses/Entropy`` ...)."""

StatsMessage = dict[str, Any]
"""A plain-dict message a worker sends to the main process (picklable, no tensors)."""

RecurrentState = tuple[torch.Tensor, ...]
"""The recurrent state of a network: ``(h, c)`` for an LSTM, ``()`` for a feed-forward net."""

ConfigDict = dict[str, Any]
"""A resolved config section as plain Python data (no interpolations left)."""
