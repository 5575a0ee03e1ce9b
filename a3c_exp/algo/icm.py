"""The Intrinsic Curiosity Module (Pathak et al. 2017), as a loss term (``intrinsic=icm``).

It uses the public loss-term protocol only (``a3c_exp.algo.terms``), like a term of your own.
Settings follow the authors' code (pathak22/noreward-rl):

* its own encoder phi, not the policy's: 4 convs of ``channels`` 3x3 filters, stride 2,
  padding 1, ELU, over frames scaled to [0, 1] (for vector observations two ELU layers of
  ``hidden_size`` instead); the policy's gradients never reach it;
* inverse model: [phi(s), phi(s')] -> ``hidden_size`` ReLU -> action logits, trained with
  cross-entropy on the action taken;
* forward model: [phi(s), one-hot a] -> ``hidden_size`` ReLU -> phi(s'), trained with
  ``0.5 * ||phi_hat(s') - phi(s')||^2`` (no stop-gradient on phi(s'), as there);
* loss, summed over the rollout: ``(1 - forward_loss_weight) * inverse + forward_loss_weight
  * forward`` (beta = 0.2); the run multiplies it by the term's ``weight`` (10 = 1 / lambda);
* bonus per step: ``reward_scale * 0.5 * ||phi_hat(s') - phi(s')||^2`` (eta = 0.01), from the
  weights the worker just pulled, added to the env's reward before the returns.

The bonus is computed in the same pass as the loss (one encoder pass over the rollout's
frames, each frame once), not while acting: the weights are the same ones, and acting stays as
fast as without curiosity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from a3c_exp.algo.rollout import Rollout
from a3c_exp.algo.terms import LossTerm, NetOutputs, TermResult


class ICM(LossTerm):
    """Inverse and forward models on an encoder of their own; the forward error is the bonus."""

    metric_names = ("Forward Loss", "Inverse Loss", "Inverse Accuracy")
    uses_next_obs = True

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        forward_loss_weight: float = 0.2,
        reward_scale: float = 0.01,
        channels: int = 32,
        hidden_size: int = 256,
        convs: int = 4,
    ):
        super().__init__()
        if not 0.0 <= forward_loss_weight <= 1.0:
            raise ValueError(
                f"intrinsic.forward_loss_weight={forward_loss_weight!r}: must be in [0, 1]"
            )
        if reward_scale < 0:
            raise ValueError(f"intrinsic.reward_scale={reward_scale!r}: must be >= 0")
        self.n_actions = int(n_actions)
        self.forward_loss_weight = float(forward_loss_weight)
        self.reward_scale = float(reward_scale)
        self.frames = len(obs_shape) == 3
        if self.frames:
            layers: list[nn.Module] = []
            in_channels = obs_shape[0]
            for _ in range(convs):
                layers += [nn.Conv2d(in_channels, channels, 3, stride=2, padding=1), nn.ELU()]
                in_channels = channels
            self.encoder = nn.Sequential(*layers, nn.Flatten())
        else:
            self.encoder = nn.Sequential(
                nn.Flatten(),
                nn.Linear(math.prod(obs_shape), hidden_size),
                nn.ELU(),
                nn.Linear(hidden_size, hidden_size),
                nn.ELU(),
            )
        with torch.no_grad():
            feature_size = self.encoder(torch.zeros(1, *obs_shape)).shape[1]
        self.feature_size = int(feature_size)
        self.inverse_model = nn.Sequential(
            nn.Linear(2 * feature_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, n_actions)
        )
        self.forward_model = nn.Sequential(
            nn.Linear(feature_size + n_actions, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, feature_size),
        )

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """phi: ``(N, *obs_shape)`` observations -> ``(N, feature_size)`` features."""
        x = obs.float()
        if self.frames:
            x = x * (1.0 / 255.0)
        return self.encoder(x)

    def encode_pairs(self, rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """phi(s_t) and phi(s_t+1) of every step, ``(T * B, feature_size)`` each.

        Step t's next observation is step t+1's observation unless step t ended its episode, so
        the encoder sees each frame once: the rollout's T frames, the one after its last step,
        and the last frame of each episode that ended inside it (half the work of encoding
        both sides in full).
        """
        steps, envs = rollout.dones.shape
        frames = torch.cat([rollout.obs, rollout.next_obs[-1:]])  # (T + 1, B, ...)
        encoded = self.encode(frames.flatten(0, 1)).view(steps + 1, envs, -1)
        phi, phi_next = encoded[:-1], encoded[1:]
        t, b = rollout.dones[:-1].nonzero(as_tuple=True)  # episode ends before the last step
        if t.numel():
            phi_next = phi_next.index_put((t, b), self.encode(rollout.next_obs[t, b]))
        return phi.flatten(0, 1), phi_next.flatten(0, 1)

    def forward(self, rollout: Rollout, outputs: NetOutputs) -> TermResult:
        """The ICM loss of a rollout, each step's bonus, and the models' figures."""
        if rollout.next_obs is None:
            raise ValueError("ICM needs the rollout's next observations (uses_next_obs)")
        steps = rollout.n_steps
        actions = rollout.actions.reshape(-1)
        phi, phi_next = self.encode_pairs(rollout)
        inverse_logits = self.inverse_model(torch.cat([phi, phi_next], dim=1))
        inverse_loss = F.cross_entropy(inverse_logits, actions, reduction="sum")
        taken = F.one_hot(actions, self.n_actions).to(phi.dtype)
        predicted = self.forward_model(torch.cat([phi, taken], dim=1))
        errors = 0.5 * (predicted - phi_next).pow(2).sum(dim=1)  # per step
        forward_loss = errors.sum()
        beta = self.forward_loss_weight
        loss = (1.0 - beta) * inverse_loss + beta * forward_loss
        accuracy = (inverse_logits.argmax(dim=1) == actions).float().mean()
        return TermResult(
            loss=loss,
            intrinsic_reward=self.reward_scale * errors.detach().view_as(rollout.rewards),
            metrics={
                "Forward Loss": float(forward_loss.detach()) / steps,
                "Inverse Loss": float(inverse_loss.detach()) / steps,
                "Inverse Accuracy": float(accuracy),
            },
        )
