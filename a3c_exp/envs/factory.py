"""Build any supported environment from its config section: one entry point for all kinds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from a3c_exp.config import ENV_CONFIGS

if TYPE_CHECKING:
    from a3c_exp.config import AtariEnvConfig, EnvConfig

ENV_KINDS = tuple(ENV_CONFIGS)


def register_atari() -> None:
    """Register ale-py's ``ALE/...`` ids with gymnasium (raises ImportError without ale-py)."""
    import ale_py

    gym.register_envs(ale_py)


def headless_renderer() -> None:
    """Let gymnasium's pygame renderers draw off-screen without looking for a display.

    Rendering frames for a video initialises SDL's video subsystem, which without a display
    server prints ``error: XDG_RUNTIME_DIR is invalid or not set in the environment.`` (a
    warning that reads like a failure). SDL's ``dummy`` driver renders the same frames with no
    display; a driver the user chose (``SDL_VIDEODRIVER``) is kept. Called where an env that
    renders is made (a worker recording videos, an evaluation with ``record=true``), never at
    import.
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@dataclass(frozen=True)
class EnvSpec:
    """What a network needs to know about an environment: observation shape and action count."""

    obs_shape: tuple[int, ...]
    n_actions: int


def make_env(
    env_cfg: EnvConfig,
    rank: int = 0,
    workdir: str | None = None,
    render_mode: str | None = None,
) -> gym.Env:
    """Create the environment described by ``env_cfg`` for worker ``rank``.

    Seeding happens at the first ``reset(seed=...)``, as gymnasium intends.
    """
    kind = env_cfg.kind
    if render_mode == "rgb_array" and kind != "vizdoom":
        headless_renderer()
    if kind == "vizdoom":
        from a3c_exp.envs.vizdoom_env import VizDoomEnv

        return VizDoomEnv(
            scenario=env_cfg.scenario,
            frame_skip=env_cfg.frame_skip,
            frame_size=env_cfg.frame_size,
            crop=env_cfg.crop,
            screen_resolution=env_cfg.screen_resolution,
            reward_scale=env_cfg.reward_scale,
            episode_timeout=env_cfg.episode_timeout,
            rgb=env_cfg.rgb,
            game_variables=env_cfg.game_variables,
            reward_shaping=dict(env_cfg.reward_shaping),
            render_mode=render_mode,
            workdir=workdir,
            instance_name=f"worker{rank}",
        )
    if kind == "gym":
        env = gym.make(env_cfg.id, render_mode=render_mode, **env_cfg.kwargs)
        if env_cfg.frame_skip > 1:
            env = gym.wrappers.MaxAndSkipObservation(env, skip=env_cfg.frame_skip)
        if env_cfg.reward_scale != 1.0:
            scale = float(env_cfg.reward_scale)
            env = gym.wrappers.TransformReward(env, lambda r: r * scale)
        if isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.dtype != (
            np.uint8
        ):
            env = gym.wrappers.DtypeObservation(env, np.float32)
        return env
    if kind == "atari":
        return make_atari(env_cfg, render_mode)
    raise ValueError(f"env.kind={kind!r}: allowed: {', '.join(ENV_KINDS)}")


def make_atari(env_cfg: AtariEnvConfig, render_mode: str | None = None) -> gym.Env:
    """An ALE game with the A3C paper's preprocessing (Mnih et al. 2016, as in DQN).

    gymnasium's ``AtariPreprocessing``: up to 30 no-ops at reset, each action held for
    ``frame_skip`` frames with the last two max-pooled, grayscale ``frame_size`` square frames;
    then the last ``frame_stack`` frames stacked as channels ``(n, H, W)`` uint8, and rewards
    clipped to their sign when ``clip_rewards`` (the episode's reported score is then the
    clipped sum: equal to the game's score in Pong, where every reward is +-1).
    """
    register_atari()
    # the emulator skips no frames itself: AtariPreprocessing does (with max-pooling)
    kwargs = {"frameskip": 1, **env_cfg.kwargs}
    env = gym.make(env_cfg.id, render_mode=render_mode, **kwargs)
    env = gym.wrappers.AtariPreprocessing(
        env, frame_skip=env_cfg.frame_skip, screen_size=env_cfg.frame_size
    )
    env = gym.wrappers.FrameStackObservation(env, stack_size=env_cfg.frame_stack)
    if env_cfg.clip_rewards or env_cfg.reward_scale != 1.0:
        clip, scale = env_cfg.clip_rewards, float(env_cfg.reward_scale)
        env = gym.wrappers.TransformReward(
            env, lambda r: (float(np.sign(r)) if clip else float(r)) * scale
        )
    return env


def probe_env_spec(env_cfg: EnvConfig, workdir: str | None = None) -> EnvSpec:
    """Open the environment once to read its spaces (and so check it starts at all)."""
    env = make_env(env_cfg, rank=0, workdir=workdir)
    try:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(
                f"env: action space {env.action_space} is not Discrete; A3C here needs discrete "
                "actions"
            )
        return EnvSpec(tuple(env.observation_space.shape), int(env.action_space.n))
    finally:
        env.close()
