"""``GlobalModel``: the global ActorCritic as a training run holds it, without Lightning.

``A3CModule`` (``algo/module.py``) defines the checkpoint format: its hyperparameters (the
run's config as plain data, the observation shape, the number of actions) and its state-dict
keys (``net.<parameter>``). A training run needs exactly that network and those
hyperparameters, but not Lightning itself, whose import costs a job ~5 CPU-seconds (it pulls
in ``torch._dynamo`` and torchmetrics): in a sweep of short trials that is a large share of
every trial. So the run builds this plain ``torch.nn.Module``, from the same
``module_parts`` as ``A3CModule``, and its checkpoints are read back by
``A3CModule.load_from_checkpoint`` (a test holds the two to the same format).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch

from a3c_exp.algo.agent import Agent, AgentSpec, agent_terms
from a3c_exp.checkpoint import upgrade_legacy_sections
from a3c_exp.config import (
    LossConfig,
    OptimConfig,
    parse_aux,
    parse_model,
    parse_optim,
    parse_section,
    parse_term,
    refuse_call_keys,
)
from a3c_exp.optim.shared import build_optimizer


@dataclass(frozen=True)
class ModuleParts:
    """What ``A3CModule`` and ``GlobalModel`` are made of, parsed once from plain data."""

    hparams: dict[str, Any]  # saved in the checkpoint: cfg, obs_shape, n_actions
    agent: AgentSpec  # the network's and the loss terms' sections
    optim: OptimConfig
    loss: LossConfig


def module_parts(cfg: dict[str, Any], obs_shape: list[int], n_actions: int) -> ModuleParts:
    """Check a stored or composed config as data and parse the sections the module uses.

    Nothing is imported here: the classes a section names are imported when the module is
    built, under the trust rule of its caller. Raises ConfigError (a ValueError) naming a
    refused key or a bad value.
    """
    cfg = upgrade_legacy_sections(cfg)
    refuse_call_keys(cfg)
    return ModuleParts(
        hparams={"cfg": cfg, "obs_shape": list(obs_shape), "n_actions": int(n_actions)},
        agent=AgentSpec(
            parse_model(cfg.get("model")),
            parse_term(cfg.get("intrinsic"), "intrinsic"),
            parse_aux(cfg.get("aux")),
        ),
        optim=parse_optim(cfg.get("optim")),
        loss=parse_section(LossConfig, cfg.get("loss", {}), "loss"),
    )


class GlobalModel(Agent):
    """The global network and loss terms of a run, with the hyperparameters its checkpoints
    store. Built from the config in force (``trusted=None``: the classes your config names
    are yours to import)."""

    def __init__(
        self,
        cfg: dict[str, Any],
        obs_shape: list[int],
        n_actions: int,
        trusted: Collection[str] | None = None,
    ):
        parts = module_parts(cfg, obs_shape, n_actions)
        super().__init__(parts.agent, obs_shape, n_actions, trusted)
        self.hparams = parts.hparams
        self.optim_config = parts.optim

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The registered shared optimizer ``optim.name`` over the network and its loss terms
        (as A3CModule)."""
        return build_optimizer(self.optim_config, self.parameters())


__all__ = ["GlobalModel", "ModuleParts", "agent_terms", "module_parts"]
