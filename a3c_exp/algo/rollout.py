"""Rollout storage and collection for one worker and its environment."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from a3c_exp.models.protocol import ActorCriticNet
from a3c_exp.seeding import ENVS, SAMPLER, derive_seed
from a3c_exp.typing import RecurrentState


@dataclass
class Rollout:
    """``rollout_len`` consecutive steps of B envs, time-major; may span episode boundaries."""

    obs: torch.Tensor  # (T, B, *obs_shape)
    actions: torch.Tensor  # (T, B) int64
    rewards: torch.Tensor  # (T, B) float32
    dones: torch.Tensor  # (T, B) bool: step t ended env b's episode
    initial_state: RecurrentState  # recurrent state of the B envs before step 0
    bootstrap_values: torch.Tensor  # (B,) V(s_T) where the last step did not end an episode, else 0
    # (T, B, *obs_shape): the observation after each step (at an episode's end its last one, not
    # the next episode's first); collected only for a loss term that asks (uses_next_obs)
    next_obs: torch.Tensor | None = None

    @property
    def n_steps(self) -> int:
        """Agent steps in the rollout (all envs)."""
        return self.actions.numel()


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


MAX_VIDEO_SIDE = 320
"""Episode GIFs are subsampled to at most this many pixels on their longer side."""


class EpisodeRecorder:
    """Records an episode every ``every_seconds`` of wall time and writes each as a GIF.

    The first episode is recorded (the untrained policy), then the first one to start after
    each interval. A schedule in time rather than in episodes gives a run a number of videos
    that follows its length, whatever the episodes' length: every 25th episode wrote 284 GIFs
    in a 4.5-minute run of basic (short episodes), every 120 s writes 3.
    """

    def __init__(
        self,
        env: gym.Env,
        every_seconds: float,
        out_dir: Path,
        prefix: str,
        fps: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.env = env
        self.every_seconds = float(every_seconds)
        self.out_dir = Path(out_dir)
        self.prefix = prefix
        self.fps = fps
        self.clock = clock
        self.episode = 0
        self._next_due = clock()
        self.frames: list[np.ndarray] | None = None
        self.written: list[str] = []
        # why recording stopped (a GIF the machine refused to write), for the run's log
        self.fault: str | None = None

    def start_episode(self) -> None:
        """Begin recording if one is due."""
        self.frames = None
        now = self.clock()
        if now >= self._next_due and self.fault is None:
            self._next_due = now + self.every_seconds
            self.frames = [self._frame()]

    def step(self) -> None:
        """Add the frame after a step to the recording in progress."""
        if self.frames is not None:
            self.frames.append(self._frame())

    def end_episode(self) -> None:
        """Write the recording (if any) and count the episode."""
        if self.frames is not None:
            import imageio.v2 as imageio

            path = self.out_dir / f"{self.prefix}-episode{self.episode:06d}.gif"
            try:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                imageio.mimsave(path, self.frames, duration=1000 / self.fps, loop=0)
                self.written.append(str(path))
            except OSError as err:  # disk full, directory gone: no more videos, training goes on
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
                self.fault = f"{(err.strerror or str(err)).lower()} writing {path}"
            self.frames = None
        self.episode += 1

    def pop_written(self) -> list[str]:
        """Paths of GIFs written since the last call."""
        written, self.written = self.written, []
        return written

    def _frame(self) -> np.ndarray:
        """The rendered frame, subsampled to at most ``MAX_VIDEO_SIDE`` pixels on its longer
        side: the GIF encoder's time grows with the pixels, and it runs in worker 0's time
        (a 600x400 CartPole episode of 30 frames took ~1 s to write, a quarter of it at 300x200).
        """
        frame = np.asarray(self.env.render())
        stride = max(1, math.ceil(max(frame.shape[:2]) / MAX_VIDEO_SIDE))
        return frame[::stride, ::stride].copy()


class RolloutCollector:
    """Steps a batch of envs with one local network, carrying the LSTM state across rollouts.

    All envs act in one batched forward pass per step (several envs per worker amortise the
    network's per-call cost), then are stepped one after the other. Observations go into
    preallocated buffers; acting runs under ``torch.inference_mode``. When an env's episode ends
    it is reset and its state zeroed, and the rollout goes on, so short episodes do not multiply
    updates.
    """

    def __init__(
        self,
        envs: Sequence[gym.Env],
        net: ActorCriticNet,
        rollout_len: int,
        seed: int,
        truncation_discount: float | None = None,
        recorder: EpisodeRecorder | None = None,
        keep_next_obs: bool = False,
    ):
        self.envs = list(envs)
        self.recorder = recorder  # records env 0
        # When set (to gamma), a time-limit truncation is not treated as the end of the task: the
        # truncated step's reward gets gamma * V(s_final) added, as if the return were bootstrapped.
        self.truncation_discount = truncation_discount
        self.net = net
        self.rollout_len = rollout_len
        first = [env.reset(seed=env_seed(seed, i))[0] for i, env in enumerate(self.envs)]
        # (B, *obs_shape): the envs' current observations
        self._obs = torch.stack([torch.as_tensor(obs) for obs in first])
        self._state = net.initial_state(len(self.envs))
        self._episodes = [EpisodeTracker() for _ in self.envs]  # one per env
        self._obs_buffer = torch.empty((rollout_len, *self._obs.shape), dtype=self._obs.dtype)
        self._next_obs_buffer = torch.empty_like(self._obs_buffer) if keep_next_obs else None
        self._generator = torch.Generator().manual_seed(derive_seed(seed, SAMPLER))
        self.env_seconds = 0.0  # time spent inside env.step/reset (the rest of collect is acting)
        if recorder is not None:
            recorder.start_episode()

    def collect(self) -> Rollout:
        """Roll out ``rollout_len`` steps of every env with the current local weights."""
        n, batch = self.rollout_len, len(self.envs)
        actions = torch.empty(n, batch, dtype=torch.int64)
        rewards = torch.empty(n, batch, dtype=torch.float32)
        dones = torch.zeros(n, batch, dtype=torch.bool)
        initial_state = tuple(s.clone() for s in self._state)
        with torch.inference_mode():
            for t in range(n):
                self._obs_buffer[t].copy_(self._obs)
                logits, values, self._state = self.net(self._obs, self._state)
                step_actions = torch.multinomial(logits.softmax(-1), 1, generator=self._generator)
                actions[t] = step_actions[:, 0]
                for i, (action, value) in enumerate(
                    zip(step_actions[:, 0].tolist(), values.tolist(), strict=True)
                ):
                    rewards[t, i], dones[t, i] = self._step_env(t, i, action, value)
            bootstrap = torch.zeros(batch)
            if not dones[-1].all():
                _, values, _ = self.net(self._obs, self._state)
                bootstrap = values * (~dones[-1])
        return Rollout(
            obs=self._obs_buffer.clone(),
            actions=actions,
            rewards=rewards,
            dones=dones,
            initial_state=initial_state,
            bootstrap_values=bootstrap.clone(),
            next_obs=None if self._next_obs_buffer is None else self._next_obs_buffer.clone(),
        )

    def pop_finished_episodes(self) -> list[dict[str, float]]:
        """Episodes of any env finished since the last call (reward, length, mean value)."""
        return [episode for tracker in self._episodes for episode in tracker.pop_finished()]

    def _step_env(self, t: int, i: int, action: int, value: float) -> tuple[float, bool]:
        """Step env ``i`` at step ``t``; reset it (and zero its state) when its episode ends."""
        env = self.envs[i]
        env_start = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step(action)
        self.env_seconds += time.perf_counter() - env_start
        if self._next_obs_buffer is not None:
            self._next_obs_buffer[t, i].copy_(torch.as_tensor(obs))
        recorder = self.recorder if i == 0 else None
        if recorder is not None:
            recorder.step()
        reward = float(reward)
        # returns are reported in the game's own reward, without any shaping (VizDoomEnv)
        self._episodes[i].add(float(info.get("score_reward", reward)), value)
        if truncated and not terminated and self.truncation_discount is not None:
            env_state = tuple(s[:, i : i + 1] for s in self._state)
            _, final_value, _ = self.net(torch.as_tensor(obs).unsqueeze(0), env_state)
            reward += self.truncation_discount * float(final_value)
        done = terminated or truncated
        if done:
            self._episodes[i].end_episode()
            env_start = time.perf_counter()
            obs, _ = env.reset()
            self.env_seconds += time.perf_counter() - env_start
            if recorder is not None:
                recorder.end_episode()
                recorder.start_episode()
            for s in self._state:
                s[:, i] = 0.0
        self._obs[i].copy_(torch.as_tensor(obs))
        return reward, done


def env_seed(worker_seed: int, index: int) -> int:
    """Seed of the ``index``-th env of a worker (its own stream: a3c_exp.seeding)."""
    return derive_seed(worker_seed, ENVS, index)
