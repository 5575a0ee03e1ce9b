"""``A3CModule``: the Lightning module wrapping the global ActorCritic.

It owns the network, the loss, the optimizer config and the checkpoint format. Training itself is
asynchronous (see ``a3c_exp.runtime``), so Lightning's Trainer is not used; the module is the one
place that says what the model is and how its checkpoints look, and
``A3CModule.load_from_checkpoint(path)`` rebuilds it from a checkpoint alone.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from a3c_exp.algo.learning import rollout_loss
from a3c_exp.algo.losses import LossTerms
from a3c_exp.algo.rollout import Rollout
from a3c_exp.models import ActorCritic, build_model
from a3c_exp.optim.shared import load_shared_state
from a3c_exp.typing import RecurrentState

CHECKPOINT_FORMAT = 1


class A3CModule(pl.LightningModule):
    """The global actor-critic, its loss and its (shared) optimizer.

    Args:
        cfg: the resolved training config as plain data (saved as hyperparameters).
        obs_shape: observation shape of the environment.
        n_actions: number of discrete actions.
    """

    def __init__(self, cfg: dict[str, Any], obs_shape: list[int], n_actions: int):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = cfg
        self.net: ActorCritic = build_model(cfg["model"], obs_shape, n_actions)

    def forward(
        self, obs: torch.Tensor, state: RecurrentState
    ) -> tuple[torch.Tensor, torch.Tensor, RecurrentState]:
        """One acting step: logits, value and next recurrent state."""
        return self.net(obs, state)

    def loss(self, rollout: Rollout) -> LossTerms:
        """The A3C loss of one rollout under this module's loss coefficients."""
        return rollout_loss(self.net, rollout, self.cfg["loss"])

    def training_step(self, batch: Rollout, batch_idx: int = 0) -> torch.Tensor:
        """Lightning hook: the total loss of a rollout (workers call ``rollout_loss`` directly)."""
        return self.loss(batch).total

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The shared optimizer from ``cfg.optim`` (a ``_partial_`` config) over the network."""
        optim_factory = instantiate(self.cfg["optim"], _convert_="all")
        return optim_factory(params=self.net.parameters())

    def checkpoint_payload(
        self, optimizer: torch.optim.Optimizer, counters: dict[str, Any]
    ) -> dict[str, Any]:
        """A Lightning-format checkpoint dict carrying the optimizer state and run counters."""
        return {
            "state_dict": {k: v.detach().clone() for k, v in self.state_dict().items()},
            "hyper_parameters": dict(self.hparams),
            "pytorch-lightning_version": pl.__version__,
            "epoch": 0,
            "global_step": int(counters.get("global_step", 0)),
            "optimizer_states": [optimizer.state_dict()],
            "a3c": {"format": CHECKPOINT_FORMAT, **counters},
        }

    def restore(self, payload: dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
        """Load network weights and optimizer moments from a checkpoint, in place (stays shared)."""
        own = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        saved = {k: tuple(v.shape) for k, v in payload["state_dict"].items()}
        if own != saved:
            diff = sorted(set(own.items()) ^ set(saved.items()))
            raise ValueError(
                f"resume: the checkpoint's network does not match this config's model "
                f"(first difference: {diff[0][0]})"
            )
        with torch.no_grad():
            for name, tensor in self.state_dict().items():
                tensor.copy_(payload["state_dict"][name])
        if payload.get("optimizer_states"):
            load_shared_state(optimizer, payload["optimizer_states"][0])
