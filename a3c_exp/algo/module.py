"""``A3CModule``: the Lightning module wrapping the global ActorCritic.

What Lightning provides here, and only that: the module holds the network, its loss
coefficients and its optimizer config (``configure_optimizers`` builds the shared optimizer),
saves them as hyperparameters, and so defines the checkpoint format, which
``A3CModule.load_from_checkpoint(path)`` reads back to rebuild the module alone. Training is
asynchronous (see ``a3c_exp.runtime``): Lightning's Trainer and its training hooks are not
used; every worker computes its loss with ``a3c_exp.algo.learning.rollout_loss``, and a
training run holds the same network as a plain ``GlobalModel`` (``algo/global_model.py``,
built from the same ``module_parts``) so that it never pays for importing Lightning.

A checkpoint is data, never code: its stored config is type-checked section by section, keys
that would make Hydra call something (``_target_`` ...) are refused, and the network and the
optimizer are built from this package's registries by name.
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch

from a3c_exp.algo.global_model import module_parts
from a3c_exp.checkpoint import CheckpointError, load_checkpoint
from a3c_exp.config import ConfigError, LossConfig
from a3c_exp.models import ActorCritic, build_model
from a3c_exp.optim.shared import build_optimizer
from a3c_exp.typing import RecurrentState


class A3CModule(pl.LightningModule):
    """The global actor-critic, its loss coefficients and its (shared) optimizer's config.

    Args:
        cfg: the training config as plain data (saved as hyperparameters); only its ``model``,
            ``optim`` and ``loss`` sections are needed here.
        obs_shape: observation shape of the environment.
        n_actions: number of discrete actions.
    """

    def __init__(self, cfg: dict[str, Any], obs_shape: list[int], n_actions: int):
        super().__init__()
        parts = module_parts(cfg, obs_shape, n_actions)
        self.save_hyperparameters(parts.hparams)
        self.model_config = parts.model
        self.optim_config = parts.optim
        self.loss_config: LossConfig = parts.loss
        self.net: ActorCritic = build_model(self.model_config, obs_shape, n_actions)

    def forward(
        self, obs: torch.Tensor, state: RecurrentState
    ) -> tuple[torch.Tensor, torch.Tensor, RecurrentState]:
        """One acting step: logits, value and next recurrent state."""
        return self.net(obs, state)

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
