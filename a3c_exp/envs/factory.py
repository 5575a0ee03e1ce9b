"""Build any supported environment from its config section: one entry point for all kinds."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from a3c_exp.config import ENV_CONFIGS, ConfigError, FactoryEnvConfig, TrustError
from a3c_exp.config.targets import (
    check_arguments,
    locate,
    require_class_or_function,
    top_package,
)

if TYPE_CHECKING:
    from a3c_exp.config import AtariEnvConfig, EnvConfig, GymEnvConfig, VizDoomEnvConfig

ENV_KINDS = (*ENV_CONFIGS, "factory")


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
    trusted: Collection[str] | None = None,
) -> gym.Env:
    """Create the environment described by ``env_cfg`` for worker ``rank``.

    Every kind goes through the same door: its builder (``ENV_BUILDERS``) makes the env, then
    the common settings apply (``frame_skip``, ``reward_scale``; float observations). Seeding
    happens at the first ``reset(seed=...)``, as gymnasium intends. ``trusted``: None for the
    config in force; the trusted packages when the section was read from a checkpoint (an env
    of your package is then imported only if trusted).
    """
    if render_mode == "rgb_array" and env_cfg.kind != "vizdoom":
        headless_renderer()
    builder = ENV_BUILDERS.get(env_cfg.kind)
    if builder is None:
        raise ValueError(f"env.kind={env_cfg.kind!r}: allowed: {', '.join(ENV_KINDS)}")
    return builder(env_cfg, rank, workdir, render_mode, trusted)


def make_vizdoom(
    env_cfg: VizDoomEnvConfig,
    rank: int,
    workdir: str | None,
    render_mode: str | None,
    trusted: Collection[str] | None,
) -> gym.Env:
    """A ViZDoom scenario (frame skip, scaling and shaping happen inside ``VizDoomEnv``)."""
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
        noop=env_cfg.noop,
        render_mode=render_mode,
        workdir=workdir,
        instance_name=f"worker{rank}",
    )


def make_gym(
    env_cfg: GymEnvConfig,
    rank: int,
    workdir: str | None,
    render_mode: str | None,
    trusted: Collection[str] | None,
) -> gym.Env:
    """A gymnasium env by id (``package.module:Env-v0`` imports the module: trusted only)."""
    if trusted is not None and ":" in env_cfg.id and top_package(env_cfg.id) not in trusted:
        package = top_package(env_cfg.id)
        raise TrustError(
            f"env.id={env_cfg.id!r}: the checkpoint names code of package {package!r}, which "
            f"is not trusted; add trusted_packages=[{package}] to import it (docs/extending.md)"
        )
    env = gym.make(env_cfg.id, render_mode=render_mode, **env_cfg.kwargs)
    return common_wrappers(env, env_cfg)


def env_factory(
    env_cfg: FactoryEnvConfig, trusted: Collection[str] | None = None
) -> Callable[..., Any]:
    """The env class or function an ``env._target_`` names, its kind and keys checked.

    Raises ConfigError (TrustError) with one line naming the key or the target.
    """
    found = locate(env_cfg.target, "env", trusted)
    factory = require_class_or_function(
        found, gym.Env, "env", env_cfg.target, "a gymnasium.Env subclass or a function"
    )
    check_arguments(factory, env_cfg.kwargs, "env", env_cfg.target)
    return factory


def _takes(factory: Callable[..., Any], name: str) -> bool:
    parameters = inspect.signature(factory).parameters.values()
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


def make_from_target(
    env_cfg: FactoryEnvConfig,
    rank: int,
    workdir: str | None,
    render_mode: str | None,
    trusted: Collection[str] | None,
) -> gym.Env:
    """An env of your package: its class or factory called with the section's other keys
    (and ``render_mode`` when it takes one), then the common settings."""
    factory = env_factory(env_cfg, trusted)
    kwargs = dict(env_cfg.kwargs)
    if render_mode is not None and "render_mode" not in kwargs and _takes(factory, "render_mode"):
        kwargs["render_mode"] = render_mode
    env = factory(**kwargs)
    if not isinstance(env, gym.Env):
        raise ConfigError(
            f"env._target_={env_cfg.target!r}: returned {type(env).__name__}, not a gymnasium.Env"
        )
    return common_wrappers(env, env_cfg)


def common_wrappers(env: gym.Env, env_cfg: EnvConfig) -> gym.Env:
    """Every env section's own settings on a gymnasium env: ``frame_skip`` (gymnasium's
    ``MaxAndSkipObservation``), ``reward_scale``, and float32 observations for a non-image
    ``Box`` (the networks take uint8 frames or float vectors)."""
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


def make_atari(
    env_cfg: AtariEnvConfig,
    rank: int = 0,
    workdir: str | None = None,
    render_mode: str | None = None,
    trusted: Collection[str] | None = None,
) -> gym.Env:
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


ENV_BUILDERS: dict[str, Callable[..., gym.Env]] = {
    "vizdoom": make_vizdoom,
    "gym": make_gym,
    "atari": make_atari,
    "factory": make_from_target,
}
"""The builder of each ``env.kind`` (``factory``: a section with ``_target_``)."""


def probe_env_spec(env_cfg: EnvConfig, workdir: str | None = None) -> EnvSpec:
    """Open the environment once to read its spaces (and so check it starts at all).

    Raises ValueError (one line) for spaces A3C here cannot use, and for an env of your own
    that fails to start."""
    try:
        env = make_env(env_cfg, rank=0, workdir=workdir)
    except Exception as err:
        if not isinstance(env_cfg, FactoryEnvConfig) or isinstance(err, ConfigError):
            raise
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConfigError(
            f"env._target_={env_cfg.target!r}: failed to start: {type(err).__name__}: {text}"
        ) from None
    try:
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(
                f"env: action space {env.action_space} is not Discrete; A3C here needs discrete "
                "actions"
            )
        if not isinstance(env.observation_space, gym.spaces.Box):
            raise ValueError(
                f"env: observation space {env.observation_space} is not a Box; the networks "
                "take arrays (frames or vectors)"
            )
        return EnvSpec(tuple(env.observation_space.shape), int(env.action_space.n))
    finally:
        env.close()
