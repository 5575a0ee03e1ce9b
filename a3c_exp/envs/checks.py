"""The environment checks its own config section before anything starts (no env is opened)."""

from __future__ import annotations

import importlib

from a3c_exp.config import (
    AtariEnvConfig,
    ConfigError,
    EnvConfig,
    FactoryEnvConfig,
    GymEnvConfig,
    VizDoomEnvConfig,
    check,
)
from a3c_exp.envs.factory import ENV_KINDS, env_factory, register_atari


def frame_side(env: EnvConfig) -> int | None:
    """The side of the env's square frames, or None when its observations are not frames the
    config sizes (a gym env: the network checks the shape it gets when it is built)."""
    return env.frame_size if isinstance(env, VizDoomEnvConfig | AtariEnvConfig) else None


def check_env(env: EnvConfig) -> None:
    """Raise ConfigError (one line: field, value, what is allowed) for a bad ``env`` section."""
    check(env.kind in ENV_KINDS, "env.kind", env.kind, f"allowed: {', '.join(ENV_KINDS)}")
    check(env.frame_skip >= 1, "env.frame_skip", env.frame_skip, "must be an integer >= 1")
    check(env.reward_scale > 0, "env.reward_scale", env.reward_scale, "must be > 0")
    side = frame_side(env)
    if side is not None:
        check(side >= 1, "env.frame_size", side, "must be an integer >= 1")
    if isinstance(env, VizDoomEnvConfig):
        _check_vizdoom(env)
    elif isinstance(env, FactoryEnvConfig):
        env_factory(env)  # imports it: its kind and keys are checked, nothing is called
    else:
        _check_gym(env)


def _check_vizdoom(env: VizDoomEnvConfig) -> None:
    import vizdoom

    from a3c_exp.envs.scenarios import ScenarioError, resolve_scenario

    check(env.scenario is not None, "env.scenario", None, "a vizdoom env needs a scenario")
    try:
        resolve_scenario(env.scenario)
    except ScenarioError as err:
        raise ConfigError(str(err)) from None
    check(
        len(env.crop) == 4 and all(c >= 0 for c in env.crop),
        "env.crop",
        env.crop,
        "must be 4 integers >= 0: top, bottom, left, right",
    )
    check(
        hasattr(vizdoom.ScreenResolution, env.screen_resolution),
        "env.screen_resolution",
        env.screen_resolution,
        "must be a vizdoom.ScreenResolution name such as RES_160X120",
    )
    if env.episode_timeout is not None:
        check(
            env.episode_timeout >= 1,
            "env.episode_timeout",
            env.episode_timeout,
            "must be an integer >= 1 or null",
        )
    unknown = [v for v in env.game_variables if not hasattr(vizdoom.GameVariable, v)]
    check(
        not unknown,
        "env.game_variables",
        env.game_variables,
        "must be vizdoom.GameVariable names such as HEALTH, AMMO2, ARMOR",
    )
    unknown = [v for v in env.reward_shaping if not hasattr(vizdoom.GameVariable, v)]
    check(
        not unknown,
        "env.reward_shaping",
        dict(env.reward_shaping),
        "keys must be vizdoom.GameVariable names such as AMMO2, HEALTH, KILLCOUNT",
    )
    check(
        len(env.game_variables) <= env.frame_size**2,
        "env.game_variables",
        env.game_variables,
        "at most frame_size^2 variables fit in the observation channel",
    )


def _check_gym(env: GymEnvConfig | AtariEnvConfig) -> None:
    import gymnasium as gym

    if isinstance(env, AtariEnvConfig):
        check(env.frame_stack >= 1, "env.frame_stack", env.frame_stack, "must be an integer >= 1")
        try:
            register_atari()
        except ImportError:
            raise ConfigError(
                "env.kind='atari': needs ale-py (pip install -e '.[atari]')"
            ) from None
    env_id = env.id or ""
    if ":" in env_id:  # "package.module:EnvName-v0": the module registers the env
        module_name, _, env_id = env_id.partition(":")
        try:
            importlib.import_module(module_name)
        except ImportError as err:
            raise ConfigError(f"env.id={env.id!r}: cannot import {module_name}: {err}") from None
    check(
        env_id in gym.registry,
        "env.id",
        env.id,
        "not a registered gymnasium id (e.g. CartPole-v1, Acrobot-v1, LunarLander-v3)",
    )
