"""``A3CModule``: the Lightning module wrapping the global ActorCritic.

What Lightning provides here, and only that: the module holds the network, its loss
coefficients and its optimizer config (``configure_optimizers`` builds the shared optimizer),
saves them as hyperparameters, and so defines the checkpoint format, which
``A3CModule.load_from_checkpoint(path)`` reads back to rebuild the module alone. Training is
asynchronous (see ``a3c_exp.runtime``): Lightning's Trainer and its training hooks are not
used; every worker computes its loss with ``a3c_exp.algo.learning.rollout_loss``, and a
training run holds the same network as a plain ``GlobalModel`` (``algo/global_model.py``,
built from the same ``module_parts``) so that it never pays for importing Lightning.

A checkpoint is data, never code: its stored config is type-checked section by section, call
keys other than ``_target_`` in the sections that build something are refused, the built-ins
are built from this package's tables by name, and a class the checkpoint names by
``_target_`` (a network or loss term of your own) is imported only from ``trusted_packages``
(this project's own, and the ones the caller adds), after its kind is checked
(``a3c_exp.config.targets``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pytorch_lightning as pl
import torch

from a3c_exp.algo.agent import agent_terms, attach_parts
from a3c_exp.algo.global_model import module_parts
from a3c_exp.checkpoint import CheckpointError, load_checkpoint
from a3c_exp.config import ConfigError, LossConfig
from a3c_exp.config.targets import PROJECT_PACKAGE
from a3c_exp.optim.shared import build_optimizer
from a3c_exp.typing import RecurrentState


def trusted_set(trusted_packages: Iterable[str] = ()) -> frozenset[str]:
    """The packages a checkpoint's classes may come from: this project's and those given."""
    return frozenset({PROJECT_PACKAGE, *trusted_packages})


class A3CModule(pl.LightningModule):
    """The global actor-critic, its loss coefficients and its (shared) optimizer's config.

    Args:
        cfg: the training config as plain data (saved as hyperparameters); only its ``model``,
            ``intrinsic``, ``aux``, ``optim`` and ``loss`` sections are needed here.
        obs_shape: observation shape of the environment.
        n_actions: number of discrete actions.
        trusted_packages: packages besides this project's whose classes ``cfg`` may name
            (``A3CModule.load_from_checkpoint(path, trusted_packages=["my_pkg"])``); never
            stored in the checkpoint: trust is the reader's to give.
    """

    def __init__(
        self,
        cfg: dict[str, Any],
        obs_shape: list[int],
        n_actions: int,
        trusted_packages: Iterable[str] = (),
    ):
        super().__init__()
        parts = module_parts(cfg, obs_shape, n_actions)
        self.save_hyperparameters(parts.hparams)
        self.model_config = parts.agent.model
        self.optim_config = parts.optim
        self.loss_config: LossConfig = parts.loss
        attach_parts(self, parts.agent, obs_shape, n_actions, trusted_set(trusted_packages))

    def forward(
        self, obs: torch.Tensor, state: RecurrentState
    ) -> tuple[torch.Tensor, torch.Tensor, RecurrentState]:
        """One acting step: logits, value and next recurrent state."""
        return self.net(obs, state)

    def loss_terms(self) -> list[tuple[str, torch.nn.Module, float]]:
        """``(slot key, module, weight)`` of every loss term (as ``Agent.loss_terms``)."""
        return agent_terms(self)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The registered shared optimizer ``optim.name`` over the network and its loss terms
        (state shared)."""
        return build_optimizer(self.optim_config, self.parameters())


def module_from_checkpoint(
    path: str | os.PathLike, trusted_packages: Iterable[str] = ()
) -> tuple[A3CModule, dict[str, Any]]:
    """The module a checkpoint holds, built from its checked config; and the payload.

    A class it names of a package outside ``trusted_packages`` (and this project) is refused
    before it is imported. Raises CheckpointError (TrustError for trust) with one line naming
    the file and the refused key or problem.
    """
    from a3c_exp.config import TrustError

    payload = load_checkpoint(path)
    hparams = payload.get("hyper_parameters") or {}
    try:
        module = A3CModule(
            hparams["cfg"],
            list(hparams["obs_shape"]),
            int(hparams["n_actions"]),
            trusted_packages=trusted_packages,
        )
    except TrustError as err:
        raise TrustError(f"checkpoint {path}: {err}") from None
    except (ConfigError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: refused: {err}") from None
    module.load_state_dict(payload["state_dict"])
    return module, payload
