"""Loss terms: modules of their own trained with the network, ours (ICM) or yours.

A loss term is a ``torch.nn.Module`` built as ``Term(obs_shape, n_actions, **keys)`` (``keys``:
its section's keys but ``_target_`` and ``weight``). Its parameters join the network's in the
shared optimizer, so every worker trains them and every checkpoint holds them. On each update
the learner calls it once on the rollout, after the network's pass and before the returns:

    result = term(rollout, outputs)        # -> TermResult(loss, intrinsic_reward, metrics)

* ``loss``: a scalar summed over the rollout's steps and envs (the units of the A3C loss); the
  total loss adds ``weight * loss``, and the term's gradients are clipped to
  ``loss.max_grad_norm`` apart from the network's;
* ``intrinsic_reward``: None, or a ``(T, B)`` bonus added to the rollout's rewards before the
  returns and advantages are computed (an exploration bonus; no gradient flows through it).
  The episode returns reported stay the env's own;
* ``metrics``: per-update figures named in the class attribute ``metric_names``, logged as
  ``<prefix>/<name>`` (``Intrinsic/...`` or ``Aux/<name>/...``), beside ``<prefix>/Loss`` (the
  loss per env step) and, with a bonus, ``Intrinsic/Reward`` (the bonus per env step).

Class attributes say what the term reads: ``uses_next_obs`` makes the rollout carry
``next_obs`` (the observation after each step, the episode's last one at its end);
``uses_features`` gives ``outputs.features``, the network encoder's features of the rollout's
observations (``(T, B, F)``; the gradient flows into the encoder: an auxiliary task shapes the
network's features through it).

Two slots hold terms: ``intrinsic`` (one exploration bonus, ``intrinsic=icm``) and ``aux``
(auxiliary losses by name, ``aux=[reward_prediction]``); both take the same protocol.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from a3c_exp.config import ConfigError, LossTermConfig
from a3c_exp.config.targets import check_arguments, locate, require_subclass

if TYPE_CHECKING:
    from a3c_exp.algo.rollout import Rollout

SUPPLIED = ("obs_shape", "n_actions")
"""The arguments the run passes every loss term itself (from the env)."""


@dataclass
class NetOutputs:
    """The network's pass over a rollout, as a loss term sees it."""

    logits: torch.Tensor  # (T, B, A)
    values: torch.Tensor  # (T, B)
    features: torch.Tensor | None = None  # (T, B, F): the encoder's, if a term uses them


@dataclass
class TermResult:
    """What a loss term gives back for one rollout."""

    loss: torch.Tensor  # scalar, summed over the rollout's steps and envs
    intrinsic_reward: torch.Tensor | None = None  # (T, B) bonus, or None
    metrics: dict[str, float] = field(default_factory=dict)  # keys from metric_names


class LossTerm(nn.Module):
    """A convenient base for a loss term (any ``nn.Module`` with the protocol above will do)."""

    metric_names: tuple[str, ...] = ()
    uses_next_obs: bool = False
    uses_features: bool = False

    def forward(self, rollout: Rollout, outputs: NetOutputs) -> TermResult:
        """The term's loss on a rollout (and its bonus and metrics)."""
        raise NotImplementedError


def term_prefix(slot_key: str) -> str:
    """The metric prefix of the term at ``intrinsic`` or ``aux.<name>``."""
    return "Intrinsic" if slot_key == "intrinsic" else f"Aux/{slot_key.partition('.')[2]}"


def term_metric_names(slot_key: str, term: nn.Module) -> list[str]:
    """Every metric key a term's updates carry, in a stable order (CSV columns)."""
    prefix = term_prefix(slot_key)
    names = [f"{prefix}/Loss"]
    if slot_key == "intrinsic":
        names.append(f"{prefix}/Reward")
    return names + [f"{prefix}/{name}" for name in getattr(term, "metric_names", ())]


def term_class(
    term_cfg: LossTermConfig, key: str, trusted: Collection[str] | None = None
) -> type[nn.Module]:
    """The module class a term section names, its kind and keys checked (nothing called).

    Raises ConfigError (TrustError) in one line naming ``key`` or the target."""
    found = locate(term_cfg.target, key, trusted)
    cls = require_subclass(found, nn.Module, key, term_cfg.target, "a torch.nn.Module subclass")
    if not callable(getattr(cls, "forward", None)):
        raise ConfigError(f"{key}._target_={term_cfg.target!r}: has no forward(rollout, outputs)")
    check_arguments(cls, term_cfg.kwargs, key, term_cfg.target, supplied=SUPPLIED)
    return cls


def build_term(
    term_cfg: LossTermConfig,
    key: str,
    obs_shape: Sequence[int],
    n_actions: int,
    trusted: Collection[str] | None = None,
) -> nn.Module:
    """The loss term a section names, built for the env's observations and actions."""
    cls = term_class(term_cfg, key, trusted)
    return cls(obs_shape=list(obs_shape), n_actions=int(n_actions), **term_cfg.kwargs)


def apply_terms(
    terms: Sequence[tuple[str, nn.Module, float]], rollout: Rollout, outputs: NetOutputs
) -> tuple[torch.Tensor | None, torch.Tensor | None, dict[str, float]]:
    """Run every term on a rollout: the weighted sum of their losses (None without terms),
    the sum of their bonuses (None without any) and their metrics, keyed for reporting.

    ``terms``: ``(slot key, module, weight)`` triples, as ``Agent.loss_terms`` lists them.
    """
    total: torch.Tensor | None = None
    bonus: torch.Tensor | None = None
    metrics: dict[str, float] = {}
    steps = rollout.n_steps
    for key, term, weight in terms:
        result: TermResult = term(rollout, outputs)
        prefix = term_prefix(key)
        weighted = weight * result.loss
        total = weighted if total is None else total + weighted
        metrics[f"{prefix}/Loss"] = float(result.loss.detach()) / steps
        if result.intrinsic_reward is not None:
            reward = result.intrinsic_reward.detach().reshape(rollout.rewards.shape)
            bonus = reward if bonus is None else bonus + reward
            metrics[f"{prefix}/Reward"] = float(reward.mean())
        for name, value in result.metrics.items():
            metrics[f"{prefix}/{name}"] = float(value)
    return total, bonus, metrics
