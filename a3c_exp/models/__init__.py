"""Actor-critic networks: pure ``nn.Module``s that know no environment and no optimizer.

The networks (``actor_critic``) need torch and are imported when first asked for;
``a3c_exp.models.shapes`` answers what a network asks of its config without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["NETWORKS", "ActorCritic", "ConvLSTMActorCritic", "MLPActorCritic", "build_model"]


def __getattr__(name: str) -> Any:
    """The networks from ``actor_critic``, imported (with torch) on first use."""
    if name in __all__:
        return getattr(importlib.import_module("a3c_exp.models.actor_critic"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
