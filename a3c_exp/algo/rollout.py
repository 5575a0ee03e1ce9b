"""Rollout storage and collection for one worker and its environment."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
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


class EpisodeRecorder:
    """Keeps the rendered frames of every ``every``-th episode and writes each as a GIF."""

    def __init__(self, env: gym.Env, every: int, out_dir: Path, prefix: str, fps: float):
        self.env = env
        self.every = every
        self.out_dir = Path(out_dir)
        self.prefix = prefix
        self.fps = fps
        self.episode = 0
        self.frames: list[np.ndarray] | None = None
        self.written: list[str] = []

    def start_episode(self) -> None:
        """Begin recording if this episode is due."""
        self.frames = [self._frame()] if self.episode % self.every == 0 else None

    def step(self) -> None:
        """Add the frame after a step to the recording in progress."""
        if self.frames is not None:
            self.frames.append(self._frame())

    def end_episode(self) -> None:
        """Write the recording (if any) and count the episode."""
        if self.frames is not None:
            import imageio.v2 as imageio

            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{self.prefix}-episode{self.episode:06d}.gif"
            imageio.mimsave(path, self.frames, duration=1000 / self.fps, loop=0)
            self.written.append(str(path))
            self.frames = None
        self.episode += 1

    def pop_written(self) -> list[str]:
        """Paths of GIFs written since the last call."""
        written, self.written = self.written, []
        return written

    def _frame(self) -> np.ndarray:
        return np.asarray(self.env.render()).copy()


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
        recorder: EpisodeRecorder | None = None,
    ):
        self.env = env
        self.recorder = recorder
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
        self.env_seconds = 0.0  # time spent inside env.step/reset (the rest of collect is acting)
        if recorder is not None:
            recorder.start_episode()

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
                env_start = time.perf_counter()
                obs, reward, terminated, truncated, _ = self.env.step(action)
                self.env_seconds += time.perf_counter() - env_start
                if self.recorder is not None:
                    self.recorder.step()
                actions[t] = action
                rewards[t] = reward
                self.episodes.add(float(reward), float(value))
                if truncated and not terminated and self.truncation_discount is not None:
                    _, final_value, _ = self.net(torch.as_tensor(obs).unsqueeze(0), self._state)
                    rewards[t] += self.truncation_discount * float(final_value)
                if terminated or truncated:
                    dones[t] = True
                    self.episodes.end_episode()
                    env_start = time.perf_counter()
                    obs, _ = self.env.reset()
                    self.env_seconds += time.perf_counter() - env_start
                    if self.recorder is not None:
                        self.recorder.end_episode()
                        self.recorder.start_episode()
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
