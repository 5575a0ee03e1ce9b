"""A corridor of cells to walk to the end of, with arguments to its constructor.

The agent starts in the first cell and moves left or right; with probability ``slip`` a move
goes the other way. Reaching the last cell ends the episode with ``goal_reward``; every step
costs ``step_cost``; an episode is cut after ``max_steps``. The observation is the one-hot
position. Small enough to learn in seconds on a CPU, and a gymnasium env like any other.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    """Walk right to the end of a corridor of ``length`` cells."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        length: int = 8,
        slip: float = 0.1,
        goal_reward: float = 1.0,
        step_cost: float = 0.01,
        max_steps: int = 100,
        render_mode: str | None = None,
    ):
        if length < 2:
            raise ValueError(f"length={length}: a corridor needs at least 2 cells")
        self.length = int(length)
        self.slip = float(slip)
        self.goal_reward = float(goal_reward)
        self.step_cost = float(step_cost)
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)  # 0: left, 1: right
        self._position = 0
        self._steps = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, dtype=np.float32)
        obs[self._position] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Back to the first cell."""
        super().reset(seed=seed)
        self._position, self._steps = 0, 0
        return self._obs(), {}

    def step(self, action: int):
        """Move one cell (the other way with probability ``slip``)."""
        move = 1 if action == 1 else -1
        if self.np_random.random() < self.slip:
            move = -move
        self._position = int(np.clip(self._position + move, 0, self.length - 1))
        self._steps += 1
        terminated = self._position == self.length - 1
        reward = (self.goal_reward if terminated else 0.0) - self.step_cost
        truncated = not terminated and self._steps >= self.max_steps
        return self._obs(), reward, terminated, truncated, {}

    def render(self) -> np.ndarray:
        """The corridor as a strip of cells, the agent's cell lit."""
        strip = np.full((8, 8 * self.length, 3), 40, dtype=np.uint8)
        strip[:, 8 * self._position : 8 * self._position + 8] = (240, 200, 60)
        return strip


def make_corridor(length: int = 8, slip: float = 0.1, time_limit: int = 100) -> gym.Env:
    """A function that returns an env works as a ``_target_`` too: here the corridor with
    gymnasium's own ``TimeLimit`` wrapper in place of the env's step limit."""
    env = Corridor(length=length, slip=slip, max_steps=10**9)
    return gym.wrappers.TimeLimit(env, max_episode_steps=time_limit)
