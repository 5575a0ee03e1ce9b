"""The DQN paper's convolutional encoder (Mnih et al. 2015) as an a3c-exp network.

Subclassing ``a3c_exp.models.ActorCritic`` with an encoder of your own gives the LSTM core,
the policy and value heads, the batched rollout pass and the tutorial's initialisation; the
class only has to build its encoder and say how many features it gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from a3c_exp.models import ActorCritic


class NatureEncoder(nn.Module):
    """conv(32, 8x8, /4) -> conv(64, 4x4, /2) -> conv(64, 3x3, /1) -> fc, over standardised
    frames (each frame to zero mean and unit variance, as a3c-exp's own encoder does)."""

    def __init__(self, obs_shape: Sequence[int], fc_size: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(obs_shape[0], 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *obs_shape)).shape[1]
        self.fc = nn.Sequential(nn.Linear(flat, fc_size), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` frames -> ``(B, fc_size)`` features."""
        frames = obs.float()
        frames = F.layer_norm(frames, frames.shape[1:], eps=1.0)
        return self.fc(self.convs(frames))


class NatureCNN(ActorCritic):
    """The Nature-CNN encoder under a3c-exp's LSTM core and heads.

    Built by the run as ``NatureCNN(obs_shape=..., n_actions=..., **keys)``, ``keys`` being the
    other keys of ``conf/model/nature_cnn.yaml``.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        fc_size: int = 512,
        lstm_size: int = 256,
    ):
        encoder = NatureEncoder(obs_shape, fc_size)
        super().__init__(encoder, fc_size, n_actions, lstm_size)
