"""Gymnasium envs that misbehave on purpose, for fault tests (``env.id=tests.fault_envs:...``)."""

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv


class NanRewardCartPole(CartPoleEnv):
    """CartPole whose reward is NaN on every ``nan_every``-th step (1 = always)."""

    def __init__(self, nan_every: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.nan_every = nan_every
        self.steps = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        if self.steps % self.nan_every == 0:
            reward = float("nan")
        return obs, reward, terminated, truncated, info


class NanForEvenSeedCartPole(NanRewardCartPole):
    """CartPole whose reward is always NaN when its first reset had an even seed (worker 0 of a
    run with seed 0), and finite otherwise: one bad worker beside healthy ones."""

    def reset(self, *, seed=None, options=None):
        if seed is not None and self.steps == 0:
            self.nan_every = 1 if seed % 2 == 0 else 10**12
        return super().reset(seed=seed, options=options)


if "NanForEvenSeedCartPole-v0" not in gym.registry:
    gym.register(
        "NanForEvenSeedCartPole-v0", entry_point=NanForEvenSeedCartPole, max_episode_steps=500
    )
if "NanRewardCartPole-v0" not in gym.registry:
    gym.register("NanRewardCartPole-v0", entry_point=NanRewardCartPole, max_episode_steps=500)
