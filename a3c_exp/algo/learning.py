"""The learning step's maths on a collected rollout: one batched pass, then the A3C loss.

Kept apart from ``module.py`` so worker processes import only torch and this package's maths,
not Lightning (which costs a worker ~175 MB of resident memory).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from a3c_exp.algo.anchor import Anchor
from a3c_exp.algo.losses import LossTerms, a3c_loss, policy_change
from a3c_exp.algo.rollout import Rollout
from a3c_exp.algo.terms import NetOutputs, apply_terms
from a3c_exp.models.protocol import ActorCriticNet, run_sequence

if TYPE_CHECKING:
    from a3c_exp.config import LossConfig


def rollout_loss(
    net: ActorCriticNet,
    rollout: Rollout,
    loss: LossConfig,
    anchor: Anchor | None = None,
    loss_terms: Sequence[tuple[str, nn.Module, float]] = (),
) -> tuple[LossTerms, torch.Tensor]:
    """Run ``net`` over a whole rollout (all its envs) in one batched pass: the A3C loss terms,
    and the policy's logits at each step (detached), to compare a later network's with.

    ``loss_terms`` (``(slot key, module, weight)``, ``Agent.loss_terms``) then see that pass:
    their bonuses are added to the rewards before the returns, their weighted losses to the
    total, and their metrics land in ``LossTerms.term_metrics`` (``a3c_exp.algo.terms``).

    With an ``anchor``, the same pass's drift from it (``loss.anchor_on``: the policy encoder's
    features, or the policy) is added to the total, weighted by ``loss.anchor_coef``, less
    ``loss.anchor_margin`` per env step (never below 0); ``anchor_drift`` is the whole drift."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def keep(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        seen.append((inputs[0], output))

    on_features = anchor is not None and loss.anchor_on == "features"
    wants_features = any(getattr(term, "uses_features", False) for _, term, _ in loss_terms)
    encoder = getattr(net, "encoder", None)
    hook = encoder.register_forward_hook(keep) if on_features or wants_features else None
    try:
        logits, values = run_sequence(net, rollout.obs, rollout.initial_state, rollout.dones)
    finally:
        if hook is not None:
            hook.remove()
    rewards, term_total, term_metrics = rollout.rewards, None, {}
    if loss_terms:
        features = seen[0][1].view(*rollout.dones.shape, -1) if wants_features else None
        outputs = NetOutputs(logits, values, features)
        term_total, bonus, term_metrics = apply_terms(loss_terms, rollout, outputs)
        if bonus is not None:
            rewards = rewards + bonus
    terms = a3c_loss(
        logits,
        values,
        rollout.actions,
        rewards,
        rollout.dones,
        rollout.bootstrap_values,
        gamma=loss.gamma,
        gae_lambda=loss.gae_lambda,
        value_coef=loss.value_coef,
        entropy_coef=loss.entropy_coef,
        huber_delta=loss.huber_delta,
        value_target=loss.value_target,
        normalize_advantages=loss.normalize_advantages,
    )
    if term_total is not None:
        terms = dataclasses.replace(
            terms, total=terms.total + term_total, term_metrics=term_metrics
        )
    if anchor is not None:
        if on_features:
            drift = anchor.feature_drift(*seen[0])
        else:
            drift = anchor.policy_drift(rollout, logits, reverse=loss.anchor_on == "policy_reverse")
        # only the rollout's excess over the margin is pulled back: n * max(0, mean - margin)
        excess = torch.relu(drift - loss.anchor_margin * rollout.n_steps)
        terms = dataclasses.replace(
            terms, total=terms.total + loss.anchor_coef * excess, anchor_drift=drift
        )
    return terms, logits.detach()


def rollout_policy_change(net: ActorCriticNet, rollout: Rollout, old_logits: torch.Tensor) -> float:
    """Mean KL(old || net's policy) over a rollout's states: how far the policy has moved since
    the network that gave ``old_logits`` (each env's LSTM started from the rollout's state)."""
    with torch.no_grad():
        logits, _ = run_sequence(net, rollout.obs, rollout.initial_state, rollout.dones)
        return float(policy_change(old_logits, logits))
