"""A3C loss terms as small pure functions (tested against hand-computed numbers).

Notation, for a rollout of T steps of one environment:
  r_t rewards, d_t = 1 if step t ended its episode, V_t value estimates, V_T the bootstrap value
  (V(s_T) if the rollout stopped mid-episode; ignored after a terminal step).

  n-step return      R_t = r_t + gamma * (1 - d_t) * R_{t+1},            R_T = V_T
  TD error       delta_t = r_t + gamma * (1 - d_t) * V_{t+1} - V_t,      V_{T} = bootstrap
  GAE(lambda)        A_t = delta_t + gamma * lambda * (1 - d_t) * A_{t+1}
  (lambda = 1 gives A_t = R_t - V_t, the tutorial's advantage)

  lambda-return  G_t = A_t + V_t  (the value target with value_target="lambda"; = R_t at lambda 1)

  value loss   = 0.5 * sum_t (R_t - V_t)^2   (R_t replaced by G_t with value_target="lambda")
                 (with huber_delta d: sum_t huber_d(R_t - V_t), the same below |R - V| = d and
                 d * (|R - V| - d / 2) above, so one large TD error pulls with at most d)
  policy loss  = -sum_t log pi(a_t | s_t) * A_t
                 (with normalize_advantages, A_t standardised over the rollout's steps and envs
                 first: (A_t - mean A) / (std A + 1e-8), so the policy's step no longer grows
                 with the size of the rollout's surprises; the value loss is unchanged)
  entropy      = sum_t H(pi(. | s_t))
  total        = value_coef * value loss + policy loss - entropy_coef * entropy

A rollout of B envs stepped side by side (``envs_per_worker``) is the same with a trailing env
axis on every quantity; the recursions run per env and the sums run over steps and envs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

ADVANTAGE_EPS = 1e-8
"""Keeps the standardised advantages finite when a rollout's advantages are all equal."""


def _as_array(values: torch.Tensor | float) -> np.ndarray:
    return torch.as_tensor(values).detach().to(torch.float64).numpy()


def discounted_returns(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    bootstrap_value: torch.Tensor | float,
    gamma: float,
) -> torch.Tensor:
    """n-step discounted returns ``R_t``, bootstrapped from V(s_T), cut at episode ends.

    ``rewards`` and ``dones`` are ``(T,)`` for one env or ``(T, B)`` for a batch of envs
    (then ``bootstrap_value`` is ``(B,)``). The recursion runs over T in numpy: T is short, and
    a few array operations per step cost far less than the same loop over torch tensors.
    """
    reward = _as_array(rewards)
    not_done = 1.0 - _as_array(dones)
    returns = np.empty_like(reward)
    running = np.broadcast_to(_as_array(bootstrap_value), reward.shape[1:])
    for t in range(len(reward) - 1, -1, -1):
        running = reward[t] + gamma * not_done[t] * running
        returns[t] = running
    return torch.from_numpy(returns).to(rewards.dtype)


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    bootstrap_value: torch.Tensor | float,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """Generalised advantage estimates ``A_t`` (no gradient flows through ``values``).

    Shapes as in :func:`discounted_returns`; ``values`` has the shape of ``rewards``.
    """
    reward = _as_array(rewards)
    value = _as_array(values)
    not_done = 1.0 - _as_array(dones)
    next_value = np.concatenate(
        [value[1:], np.broadcast_to(_as_array(bootstrap_value), value.shape[1:])[None]]
    )
    delta = reward + gamma * not_done * next_value - value
    advantages = np.empty_like(reward)
    running = np.zeros(reward.shape[1:])
    for t in range(len(reward) - 1, -1, -1):
        running = delta[t] + gamma * gae_lambda * not_done[t] * running
        advantages[t] = running
    return torch.from_numpy(advantages).to(rewards.dtype)


def policy_change(old_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """Mean KL(old || new) of two policies' action distributions over the same states.

    ``old_logits`` and ``new_logits`` are ``(..., n_actions)`` for the same states (the last
    axis is the actions); the KL is taken per state and averaged over all the others.
    """
    old = F.log_softmax(old_logits, dim=-1)
    new = F.log_softmax(new_logits, dim=-1)
    return (old.exp() * (old - new)).sum(-1).mean()


@dataclass
class LossTerms:
    """The loss to minimise and its parts (sums over the rollout), for logging."""

    total: torch.Tensor
    value_loss: torch.Tensor
    policy_loss: torch.Tensor
    entropy: torch.Tensor
    # the distance from the anchor (a3c_exp.algo.anchor, loss.anchor_on); None: no anchor
    anchor_drift: torch.Tensor | None = None
    # the loss terms' figures, keyed for reporting (a3c_exp.algo.terms); empty without terms
    term_metrics: dict[str, float] = field(default_factory=dict)


def a3c_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    dones: torch.Tensor,
    bootstrap_value: torch.Tensor | float,
    gamma: float,
    gae_lambda: float,
    value_coef: float,
    entropy_coef: float,
    huber_delta: float | None = None,
    value_target: str = "n_step",
    normalize_advantages: bool = False,
) -> LossTerms:
    """The A3C loss of a rollout from the network's ``logits (T, [B,] A)`` and ``values (T, [B])``.

    Every term is a sum over all steps of all envs of the rollout. ``value_target`` is what the
    value head regresses on: ``"n_step"`` the tutorial's n-step return R_t, ``"lambda"`` the
    lambda-return A_t + V_t, which weighs a far return (a death 30 steps on) by
    (gamma * lambda)^k as the advantages do, rather than in full.
    """
    advantages = gae_advantages(rewards, values, dones, bootstrap_value, gamma, gae_lambda)
    if value_target == "n_step":
        returns = discounted_returns(rewards, dones, bootstrap_value, gamma)
    elif value_target == "lambda":
        returns = advantages + values.detach()
    else:
        raise ValueError(f"value_target {value_target!r}: allowed n_step, lambda")
    if normalize_advantages and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + ADVANTAGE_EPS)
    log_probs = F.log_softmax(logits, dim=-1)
    probs = log_probs.exp()
    entropy = -(probs * log_probs).sum()
    taken_log_probs = log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    policy_loss = -(taken_log_probs * advantages).sum()
    if huber_delta is None:
        value_loss = 0.5 * (returns - values).pow(2).sum()
    else:
        value_loss = F.huber_loss(values, returns, reduction="sum", delta=huber_delta)
    total = value_coef * value_loss + policy_loss - entropy_coef * entropy
    return LossTerms(total=total, value_loss=value_loss, policy_loss=policy_loss, entropy=entropy)
