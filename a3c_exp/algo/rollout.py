"""Rollout storage and collection for one worker and its environment."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import torch

from a3c_exp.models import ActorCritic
from a3c_exp.typing import RecurrentState


@dataclass
class Rollout:
    """Up to ``rollout_len`` consecutive steps of one env; may span episode boundaries."""

    obs: torch.Tensor  # (T, *obs_shape)
    actions: torch.Tensor  # (T,) int64
    rewards: torch.Tensor  # (T,) float32
    dones: torch.Tensor  # (T,) bool: step t ended its episode
    initial_state: RecurrentState  # recurrent state before step 0
    bootstrap_value: float  # V(s_T) if the last step did not end an episode, else 0


@dataclass
class EpisodeTracker:
    """Accumulates the running episode's return, length and mean value estimate."""

    reward: float = 0.0
    length: int = 0
    value_sum: float = 0.0
    finished: list[dict[str, float]] = field(default_factory=list)

    def add(self, reward: float, value: float) -> None:
        """Record one step."""
        self.reward += reward
        self.length += 1
        self.value_sum += value

    def end_episode(self) -> None:
        """Close the running episode and start a new one."""
        self.finished.append(
            {"reward": self.reward, "length": self.length, "value": self.value_sum / self.length}
        )
        self.reward, self.length, self.value_sum = 0.0, 0, 0.0

    def pop_finished(self) -> list[dict[str, float]]:
        """Episodes finished since the last call."""
        done, self.finished = self.finished, []
        return done


class RolloutCollector:
    """Steps one env with a local network, carrying the LSTM state across rollouts.

    Observations go into preallocated buffers; acting runs under ``torch.inference_mode``. When an
    episode ends the env is reset and the state zeroed, and the rollout goes on, so short episodes
    do not multiply updates.
    """

    def __init__(
        self,
        env: gym.Env,
        net: ActorCritic,
        rollout_len: int,
        seed: int,
        truncation_discount: float | None = None,
    ):
        self.env = env
        # When set (to gamma), a time-limit truncation is not treated as the end of the task: the
        # truncated step's reward gets gamma * V(s_final) added, as if the return were bootstrapped.
        self.truncation_discount = truncation_discount
        self.net = net
        self.rollout_len = rollout_len
        obs, _ = env.reset(seed=seed)
        self._obs = torch.as_tensor(obs)
        self._state = net.initial_state(1)
        self.episodes = EpisodeTracker()
        self._obs_buffer = torch.empty((rollout_len, *self._obs.shape), dtype=self._obs.dtype)
        self._generator = torch.Generator().manual_seed(seed)

    def collect(self) -> Rollout:
        """Roll out ``rollout_len`` steps with the current local weights."""
        n = self.rollout_len
        actions = torch.empty(n, dtype=torch.int64)
        rewards = torch.empty(n, dtype=torch.float32)
        dones = torch.zeros(n, dtype=torch.bool)
        initial_state = tuple(s.clone() for s in self._state)
        with torch.inference_mode():
            for t in range(n):
                self._obs_buffer[t].copy_(self._obs)
                logits, value, self._state = self.net(self._obs.unsqueeze(0), self._state)
                action = int(torch.multinomial(logits.softmax(-1)[0], 1, generator=self._generator))
                obs, reward, terminated, truncated, _ = self.env.step(action)
                actions[t] = action
                rewards[t] = reward
                self.episodes.add(float(reward), float(value))
                if truncated and not terminated and self.truncation_discount is not None:
                    _, final_value, _ = self.net(torch.as_tensor(obs).unsqueeze(0), self._state)
                    rewards[t] += self.truncation_discount * float(final_value)
                if terminated or truncated:
                    dones[t] = True
                    self.episodes.end_episode()
                    obs, _ = self.env.reset()
                    self._state = self.net.initial_state(1)
                self._obs = torch.as_tensor(obs)
            bootstrap = 0.0
            if not dones[-1]:
                _, value, _ = self.net(self._obs.unsqueeze(0), self._state)
                bootstrap = float(value)
        return Rollout(
            obs=self._obs_buffer.clone(),
            actions=actions,
            rewards=rewards,
            dones=dones,
            initial_state=initial_state,
            bootstrap_value=bootstrap,
        )
