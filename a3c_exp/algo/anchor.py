"""A slow copy of the network that the learning step is pulled toward.

A learned defend_the_center policy breaks within tens of updates: the encoder's features change
under the heads (half the fc units go dark at once) and the policy turns near-uniform before
it relearns (docs/results/defend_the_center_2026-12-01/). ``loss.anchor_coef`` adds to the loss
the distance, on the rollout's own frames, from the network to an exponential moving average
of its weights, so the network can move only as fast as the average follows it:

* ``loss.anchor_on: features``: half the squared distance of the encoder's features to the
  average encoder's;
* ``loss.anchor_on: policy``: KL(average's policy || the policy), summed over the rollout's
  steps (the LSTM of both started from the rollout's carried state). Mass-covering: it also
  resists the policy becoming surer than the average;
* ``loss.anchor_on: policy_reverse``: KL(the policy || average's policy), the same sum the other
  way round. Mode-seeking: the policy may grow surer of an action the average takes, and is held
  back from spreading onto actions the average does not take (a break turns the policy near
  uniform).

With ``loss.anchor_margin`` the pull acts only on the rollout's excess over that mean distance
per env step (``a3c_exp.algo.learning``): learning at the pace the margin allows goes unpulled,
and only a policy running away from the average is held back.

Each worker keeps its own average of the weights it pulls before every update (every worker
pulls the global weights each time, so each average follows the global network): nothing is
shared or checkpointed, and it works the same on both backends. A resumed or restarted worker
starts its average from its first pull.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch

from a3c_exp.algo.losses import policy_change
from a3c_exp.models.protocol import ActorCriticNet, run_sequence

if TYPE_CHECKING:
    from a3c_exp.algo.rollout import Rollout


class Anchor:
    """The moving average of a network's weights, and a network's distance from it."""

    def __init__(self, net: ActorCriticNet, decay: float):
        self.decay = float(decay)
        self.net = copy.deepcopy(net).requires_grad_(False)

    def follow(self, net: ActorCriticNet) -> None:
        """Move the average ``1 - decay`` of the way to ``net``'s current weights."""
        with torch.no_grad():
            torch._foreach_lerp_(
                list(self.net.parameters()), list(net.parameters()), 1.0 - self.decay
            )
            for mine, theirs in zip(self.net.buffers(), net.buffers(), strict=True):
                mine.copy_(theirs)

    def feature_drift(self, inputs: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``0.5 * sum ||features - average encoder(inputs)||^2`` over the batch (a gradient
        flows into ``features`` only)."""
        with torch.no_grad():
            anchored = self.net.encoder(inputs)
        return 0.5 * (features - anchored).pow(2).sum()

    def policy_drift(
        self, rollout: Rollout, logits: torch.Tensor, reverse: bool = False
    ) -> torch.Tensor:
        """``sum_t KL(average's policy || softmax(logits))`` over the rollout's steps and envs,
        or with ``reverse`` ``KL(softmax(logits) || average's policy)`` (a gradient flows into
        ``logits`` only)."""
        with torch.no_grad():
            anchored, _ = run_sequence(self.net, rollout.obs, rollout.initial_state, rollout.dones)
        mean = policy_change(logits, anchored) if reverse else policy_change(anchored, logits)
        return mean * anchored.shape[:-1].numel()  # mean -> sum
