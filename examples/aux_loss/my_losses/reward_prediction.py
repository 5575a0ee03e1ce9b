"""Reward prediction as an auxiliary task (after UNREAL, Jaderberg et al. 2017), as a loss term.

From the network's features of each step and the action taken, a small head predicts whether
the step's reward was negative, zero or positive. Its gradient flows into the network's
encoder (``uses_features``): the features learn what leads to reward before the policy does.
It follows a3c-exp's loss-term protocol (``a3c_exp.algo.terms``): built as
``RewardPrediction(obs_shape, n_actions, **keys)``, called once per update on the rollout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from a3c_exp.algo.terms import LossTerm, NetOutputs, TermResult


class RewardPrediction(LossTerm):
    """Classify each step's reward as negative, zero or positive from features and action."""

    metric_names = ("Accuracy",)
    uses_features = True

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        feature_size: int,
        hidden_size: int = 64,
    ):
        super().__init__()
        self.n_actions = int(n_actions)
        self.head = nn.Sequential(
            nn.Linear(feature_size + n_actions, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 3)
        )

    def forward(self, rollout, outputs: NetOutputs) -> TermResult:
        """Cross-entropy of the reward's sign, summed over the rollout's steps."""
        features = outputs.features.flatten(0, 1)
        actions = F.one_hot(rollout.actions.reshape(-1), self.n_actions).to(features.dtype)
        logits = self.head(torch.cat([features, actions], dim=1))
        classes = (torch.sign(rollout.rewards.reshape(-1)) + 1).long()  # -1, 0, 1 -> 0, 1, 2
        loss = F.cross_entropy(logits, classes, reduction="sum")
        accuracy = (logits.argmax(dim=1) == classes).float().mean()
        return TermResult(loss=loss, metrics={"Accuracy": float(accuracy)})
