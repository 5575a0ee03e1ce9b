"""A slow copy of the encoder that the learning step's features are pulled toward.

A learned defend_the_center policy breaks within tens of updates: the encoder's features change
under the heads (half the fc units go dark at once) and the policy turns near-uniform before
it relearns (docs/results/defend_the_center_2026-12-01/). ``loss.anchor_coef`` adds to the loss
the squared distance of the encoder's features on the rollout's frames to those of an
exponential moving average of the encoder's weights, so features move as fast as the average
does and no faster, while the average still follows what the network learns.

Each worker keeps its own average of the weights it pulls before every update (every worker
pulls the global weights each time, so each average follows the global network): nothing is
shared or checkpointed, and it works the same on both backends. A resumed or restarted worker
starts its average from its first pull.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class FeatureAnchor:
    """The moving average of an encoder's weights, and its features' distance from it."""

    def __init__(self, encoder: nn.Module, decay: float):
        self.decay = float(decay)
        self.encoder = copy.deepcopy(encoder).requires_grad_(False)

    def follow(self, encoder: nn.Module) -> None:
        """Move the average ``1 - decay`` of the way to ``encoder``'s current weights."""
        with torch.no_grad():
            torch._foreach_lerp_(
                list(self.encoder.parameters()), list(encoder.parameters()), 1.0 - self.decay
            )
            for mine, theirs in zip(self.encoder.buffers(), encoder.buffers(), strict=True):
                mine.copy_(theirs)

    def drift(self, inputs: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``0.5 * sum ||features - average encoder(inputs)||^2`` over the batch (a gradient
        flows into ``features`` only)."""
        with torch.no_grad():
            anchored = self.encoder(inputs)
        return 0.5 * (features - anchored).pow(2).sum()
