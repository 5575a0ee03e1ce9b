"""A3C loss terms as small pure functions (tested against hand-computed numbers).

Notation, for a rollout of T steps of one environment:
  r_t rewards, d_t = 1 if step t ended its episode, V_t value estimates, V_T the bootstrap value
  (V(s_T) if the rollout stopped mid-episode; ignored after a terminal step).

  n-step return      R_t = r_t + gamma * (1 - d_t) * R_{t+1},            R_T = V_T
  TD error       delta_t = r_t + gamma * (1 - d_t) * V_{t+1} - V_t,      V_{T} = bootstrap
  GAE(lambda)        A_t = delta_t + gamma * lambda * (1 - d_t) * A_{t+1}
  (lambda = 1 gives A_t = R_t - V_t, the tutorial's advantage)

  value loss   = 0.5 * sum_t (R_t - V_t)^2
  policy loss  = -sum_t log pi(a_t | s_t) * A_t
  entropy      = sum_t H(pi(. | s_t))
  total        = value_coef * value loss + policy loss - entropy_coef * entropy
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def discounted_returns(
    rewards: torch.Tensor, dones: torch.Tensor, bootstrap_value: float, gamma: float
) -> torch.Tensor:
    """n-step discounted returns ``R_t``, bootstrapped from V(s_T), cut at episode ends."""
    returns = torch.empty_like(rewards)
    running = float(bootstrap_value)
    not_done = (1.0 - dones.float()).tolist()
    for t, reward in reversed(list(enumerate(rewards.tolist()))):
        running = reward + gamma * not_done[t] * running
        returns[t] = running
    return returns


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    bootstrap_value: float,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """Generalised advantage estimates ``A_t`` (no gradient flows through ``values``)."""
    advantages = torch.empty_like(rewards)
    value_list = values.detach().tolist()
    next_values = [*value_list[1:], float(bootstrap_value)]
    not_done = (1.0 - dones.float()).tolist()
    running = 0.0
    for t, reward in reversed(list(enumerate(rewards.tolist()))):
        delta = reward + gamma * not_done[t] * next_values[t] - value_list[t]
        running = delta + gamma * gae_lambda * not_done[t] * running
        advantages[t] = running
    return advantages


@dataclass
class LossTerms:
    """The loss to minimise and its parts (sums over the rollout), for logging."""

    total: torch.Tensor
    value_loss: torch.Tensor
    policy_loss: torch.Tensor
    entropy: torch.Tensor


def a3c_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    dones: torch.Tensor,
    bootstrap_value: float,
    gamma: float,
    gae_lambda: float,
    value_coef: float,
    entropy_coef: float,
) -> LossTerms:
    """The A3C loss of one rollout from the network's ``logits (T, A)`` and ``values (T,)``."""
    returns = discounted_returns(rewards, dones, bootstrap_value, gamma)
    advantages = gae_advantages(rewards, values, dones, bootstrap_value, gamma, gae_lambda)
    log_probs = F.log_softmax(logits, dim=-1)
    probs = log_probs.exp()
    entropy = -(probs * log_probs).sum()
    taken_log_probs = log_probs.gather(1, actions.long().unsqueeze(1)).squeeze(1)
    policy_loss = -(taken_log_probs * advantages).sum()
    value_loss = 0.5 * (returns - values).pow(2).sum()
    total = value_coef * value_loss + policy_loss - entropy_coef * entropy
    return LossTerms(total=total, value_loss=value_loss, policy_loss=policy_loss, entropy=entropy)
