"""Actor-critic networks: pure ``nn.Module``s that know no environment and no optimizer.

The networks (``actor_critic``), the protocol every network follows (``protocol``) and the
builder that makes one from its ``model`` section (``build``) need torch and are imported when
first asked for;
``a3c_exp.models.shapes`` answers what a network asks of its config without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ActorCritic": "actor_critic",
    "ConvLSTMActorCritic": "actor_critic",
    "ConvEncoder": "actor_critic",
    "MLPActorCritic": "actor_critic",
    "ActorCriticNet": "protocol",
    "run_sequence": "protocol",
    "NETWORKS": "build",
    "build_model": "build",
    "network_class": "build",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """The networks and their builder, imported (with torch) on first use."""
    if name in _HOMES:
        return getattr(importlib.import_module(f"a3c_exp.models.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
