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

from dataclasses import dataclass
from typing import Any

import torch

from a3c_exp.checkpoint import upgrade_legacy_sections
from a3c_exp.config import (
    LossConfig,
    ModelConfig,
    OptimConfig,
    parse_model,
    parse_optim,
    parse_section,
    refuse_call_keys,
)
from a3c_exp.models import ActorCritic, build_model
from a3c_exp.optim.shared import build_optimizer


@dataclass(frozen=True)
class ModuleParts:
    """What ``A3CModule`` and ``GlobalModel`` are made of, parsed once from plain data."""

    hparams: dict[str, Any]  # saved in the checkpoint: cfg, obs_shape, n_actions
    model: ModelConfig
    optim: OptimConfig
    loss: LossConfig


def module_parts(cfg: dict[str, Any], obs_shape: list[int], n_actions: int) -> ModuleParts:
    """Check a stored or composed config as data and parse the sections the module uses.

    Raises ConfigError (a ValueError) naming a refused key or a bad value.
    """
    cfg = upgrade_legacy_sections(cfg)
    refuse_call_keys(cfg)
    return ModuleParts(
        hparams={"cfg": cfg, "obs_shape": list(obs_shape), "n_actions": int(n_actions)},
        model=parse_model(cfg.get("model")),
        optim=parse_optim(cfg.get("optim")),
        loss=parse_section(LossConfig, cfg.get("loss", {}), "loss"),
    )


class GlobalModel(torch.nn.Module):
    """The global network of a run (``net``) with the hyperparameters its checkpoints store."""

    def __init__(self, cfg: dict[str, Any], obs_shape: list[int], n_actions: int):
        super().__init__()
        parts = module_parts(cfg, obs_shape, n_actions)
        self.hparams = parts.hparams
        self.optim_config = parts.optim
        self.net: ActorCritic = build_model(parts.model, obs_shape, n_actions)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The registered shared optimizer ``optim.name`` over the network (as A3CModule)."""
        return build_optimizer(self.optim_config, self.net.parameters())
