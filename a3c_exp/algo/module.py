"""``A3CModule``: the Lightning module wrapping the global ActorCritic.

It owns the network, the loss, the optimizer config and the checkpoint format. Training itself is
asynchronous (see ``a3c_exp.runtime``), so Lightning's Trainer is not used; the module is the one
place that says what the model is and how its checkpoints look, and
``A3CModule.load_from_checkpoint(path)`` rebuilds it from a checkpoint alone.

A checkpoint is data, never code: its stored config is type-checked section by section, keys
that would make Hydra call something (``_target_`` ...) are refused, and the network and the
optimizer are built from this package's registries by name.
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch

from a3c_exp.algo.learning import rollout_loss
from a3c_exp.algo.losses import LossTerms
from a3c_exp.algo.rollout import Rollout
from a3c_exp.checkpoint import CheckpointError, load_checkpoint, upgrade_legacy_sections
from a3c_exp.config import (
    ConfigError,
    LossConfig,
    parse_model,
    parse_optim,
    parse_section,
    refuse_call_keys,
)
from a3c_exp.models import ActorCritic, build_model
from a3c_exp.optim.shared import build_optimizer
from a3c_exp.typing import RecurrentState


class A3CModule(pl.LightningModule):
    """The global actor-critic, its loss and its (shared) optimizer.

    Args:
        cfg: the training config as plain data (saved as hyperparameters); only its ``model``,
            ``optim`` and ``loss`` sections are needed here.
        obs_shape: observation shape of the environment.
        n_actions: number of discrete actions.
    """

    def __init__(self, cfg: dict[str, Any], obs_shape: list[int], n_actions: int):
        super().__init__()
        cfg = upgrade_legacy_sections(cfg)
        refuse_call_keys(cfg)
        self.save_hyperparameters({"cfg": cfg, "obs_shape": obs_shape, "n_actions": n_actions})
        self.model_config = parse_model(cfg.get("model"))
        self.optim_config = parse_optim(cfg.get("optim"))
        self.loss_config: LossConfig = parse_section(LossConfig, cfg.get("loss", {}), "loss")
        self.net: ActorCritic = build_model(self.model_config, obs_shape, n_actions)

    def forward(
        self, obs: torch.Tensor, state: RecurrentState
    ) -> tuple[torch.Tensor, torch.Tensor, RecurrentState]:
        """One acting step: logits, value and next recurrent state."""
        return self.net(obs, state)

    def loss(self, rollout: Rollout) -> LossTerms:
        """The A3C loss of one rollout under this module's loss coefficients."""
        return rollout_loss(self.net, rollout, self.loss_config)

    def training_step(self, batch: Rollout, batch_idx: int = 0) -> torch.Tensor:
        """Lightning hook: the total loss of a rollout (workers call ``rollout_loss`` directly)."""
        return self.loss(batch).total

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The registered shared optimizer ``optim.name`` over the network (state shared)."""
        return build_optimizer(self.optim_config, self.net.parameters())


def module_from_checkpoint(path: str | os.PathLike) -> tuple[A3CModule, dict[str, Any]]:
    """The module a checkpoint holds, built by name from its checked config; and the payload.

    Raises CheckpointError with one line naming the file and the refused key or problem.
    """
    payload = load_checkpoint(path)
    hparams = payload.get("hyper_parameters") or {}
    try:
        module = A3CModule(hparams["cfg"], list(hparams["obs_shape"]), int(hparams["n_actions"]))
    except (ConfigError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: refused: {err}") from None
    module.load_state_dict(payload["state_dict"])
    return module, payload
