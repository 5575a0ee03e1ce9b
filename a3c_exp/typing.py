"""Type aliases shared across the package, so signatures say what flows where."""

from __future__ import annotations

import torch

Metrics = dict[str, float]
"""Scalar metrics keyed by their reporting name (``Perf/Reward``, ``Losses/Entropy`` ...)."""

RecurrentState = tuple[torch.Tensor, ...]
"""The recurrent state of a network: ``(h, c)`` for an LSTM, ``()`` for a feed-forward net."""
