"""Gymnasium envs that misbehave on purpose, for fault tests (``env.id=tests.fault_envs:...``)."""

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv

from a3c_exp.seeding import ENVS, derive_seed


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
    """CartPole whose reward is always NaN in worker 0's first env of a run with seed 0, and
    finite elsewhere: one bad worker beside healthy ones. (Its name is from when worker i was
    seeded ``seed + i``; seeds are derived now, so worker 0's env seed is derived here too.)"""

    def reset(self, *, seed=None, options=None):
        if seed is not None and self.steps == 0:
            worker0 = derive_seed(0, 0, 0, 0)  # run seed 0; rank 0, no restart, step 0
            self.nan_every = 1 if seed == derive_seed(worker0, ENVS, 0) else 10**12
        return super().reset(seed=seed, options=options)


if "NanForEvenSeedCartPole-v0" not in gym.registry:
    gym.register(
        "NanForEvenSeedCartPole-v0", entry_point=NanForEvenSeedCartPole, max_episode_steps=500
    )
if "NanRewardCartPole-v0" not in gym.registry:
    gym.register("NanRewardCartPole-v0", entry_point=NanRewardCartPole, max_episode_steps=500)
