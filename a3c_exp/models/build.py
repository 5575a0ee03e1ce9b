"""Building a network from its ``model`` section: one door for the built-ins and yours.

A section names a built-in by ``name`` (the table ``NETWORKS``) or a class of your package by
``_target_``; either way the class is checked to be an ``nn.Module`` subclass, the section's
keys are checked against its signature, and it is called as ``cls(obs_shape=..., n_actions=...,
**keys)``. A class named by a checkpoint is imported only from trusted packages
(``a3c_exp.config.targets``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import fields
from typing import Any

from torch import nn

from a3c_exp.config import ConfigError, ModelConfig, TargetConfig
from a3c_exp.config.targets import check_arguments, locate, require_subclass
from a3c_exp.models.actor_critic import ConvLSTMActorCritic, MLPActorCritic
from a3c_exp.models.protocol import ActorCriticNet, check_outputs

NETWORKS: dict[str, type[nn.Module]] = {
    "conv_lstm": ConvLSTMActorCritic,
    "mlp": MLPActorCritic,
}
"""The built-in networks ``model.name`` may choose (their typed configs: ``a3c_exp.config``)."""

SUPPLIED = ("obs_shape", "n_actions")
"""The arguments the run passes every network itself (from the env)."""


def network_class(
    model_cfg: ModelConfig, trusted: Collection[str] | None = None
) -> tuple[type[nn.Module], dict[str, Any]]:
    """The class a ``model`` section names and the keyword arguments it gives, both checked.

    ``trusted``: None for the config in force; the trusted packages when the section was read
    from a checkpoint. Raises ConfigError (TrustError) with one line naming the key.
    """
    if isinstance(model_cfg, TargetConfig):
        found = locate(model_cfg.target, "model", trusted)
        cls = require_subclass(
            found, nn.Module, "model", model_cfg.target, "a torch.nn.Module subclass"
        )
        kwargs = dict(model_cfg.kwargs)
        target = model_cfg.target
    else:
        if model_cfg.name not in NETWORKS:
            raise ConfigError(f"model.name={model_cfg.name!r}: allowed: {', '.join(NETWORKS)}")
        cls = NETWORKS[model_cfg.name]
        kwargs = {f.name: getattr(model_cfg, f.name) for f in fields(model_cfg) if f.name != "name"}
        target = f"{cls.__module__}.{cls.__qualname__}"
    check_arguments(cls, kwargs, "model", target, supplied=SUPPLIED)
    return cls, kwargs


def build_model(
    model_cfg: ModelConfig,
    obs_shape: Sequence[int],
    n_actions: int,
    trusted: Collection[str] | None = None,
) -> nn.Module:
    """The network ``model_cfg`` names, built for observations ``obs_shape`` and ``n_actions``.

    A network of your own is checked to follow the protocol (``a3c_exp.models.protocol``) with
    one step on a blank observation. Raises ValueError (ConfigError) with one line when the
    config does not fit the environment or the class does not fit the protocol.
    """
    cls, kwargs = network_class(model_cfg, trusted)
    net = cls(obs_shape=list(obs_shape), n_actions=int(n_actions), **kwargs)
    if isinstance(model_cfg, TargetConfig):
        if not isinstance(net, ActorCriticNet):
            raise ConfigError(
                f"model._target_={model_cfg.target!r}: lacks initial_state or forward, which "
                "every network has (a3c_exp.models.protocol)"
            )
        check_outputs(net, tuple(obs_shape), int(n_actions))
    return net
