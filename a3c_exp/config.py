"""Config schemas (registered in Hydra's ConfigStore) and the checks run before any worker starts.

The dataclasses type every top-level knob, so Hydra rejects unknown keys and wrong types itself;
``validate`` then checks ranges and cross-field rules and raises ``ConfigError`` with one line
naming the field, the value and what is allowed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

OBJECTIVES = ("final_mean_reward", "best_mean_reward", "steps_per_second")
"""Summary values a job can return to a Hydra sweeper as its objective."""


class ConfigError(ValueError):
    """A config value that is out of range or inconsistent; the message is one line."""


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class EnvConfig:
    """Which environment to train on and how to preprocess it."""

    name: str = MISSING  # short label used in run names, e.g. "doom" or "cartpole"
    kind: str = MISSING  # "vizdoom" (a scenario .cfg) or "gym" (a gymnasium id)
    scenario: str | None = None  # vizdoom: shipped scenario name (basic, ...) or path to a .cfg
    id: str | None = None  # gym: environment id, e.g. CartPole-v1
    kwargs: dict[str, Any] = field(default_factory=dict)  # gym: extra gymnasium.make arguments
    frame_skip: int = 1  # each action is repeated for this many tics/frames
    reward_scale: float = 1.0  # rewards are multiplied by this before learning and reporting
    frame_size: int = 84  # vizdoom: frames are resized to frame_size x frame_size
    crop: list[int] = field(
        default_factory=lambda: [10, 10, 30, 30]
    )  # vizdoom: top,bottom,left,right
    screen_resolution: str = "RES_160X120"  # vizdoom: engine render resolution
    episode_timeout: int | None = None  # vizdoom: tics per episode; null keeps the scenario's own
    bootstrap_truncated: bool = (
        False  # time-limit ends bootstrap from V(s) instead of counting as failure
    )


@dataclass
class LossConfig:
    """A3C loss coefficients."""

    gamma: float = 0.99  # discount factor, in (0, 1]
    gae_lambda: float = 1.0  # GAE lambda in [0, 1]; 1.0 = tutorial advantage R - V(s)
    value_coef: float = 0.5  # weight of the value loss 0.5 * sum (R - V)^2
    entropy_coef: float = 0.01  # beta: weight of the entropy bonus
    max_grad_norm: float = 40.0  # gradients are clipped to this global norm


@dataclass
class LoggerConfig:
    """Where metrics go besides the console and the run directory's CSV."""

    kind: str = "none"  # "wandb" or "none"
    project: str = "a3c-exp"  # W&B project
    entity: str | None = None  # W&B entity (user or team); null = the default one
    group: str | None = None  # W&B group (sweeps share one)
    tags: list[str] = field(default_factory=list)  # W&B tags
    job_type: str = "train"  # W&B job type
    name: str | None = None  # W&B run name; null = built from the job's overrides
    mode: str = "offline"  # W&B mode: offline (default, no network), online or disabled
    log_checkpoints: bool = False  # log the final and best checkpoints as W&B model artifacts


@dataclass
class TrainConfig:
    """Top-level training knobs; ``model`` and ``optim`` are ``_target_`` configs (instantiate)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    model: Any = MISSING  # network: _target_ + constructor arguments (see conf/model/)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: Any = MISSING  # shared optimizer: _target_, _partial_: true, lr, ... (see conf/optim/)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    experiment: Any = None  # name of the experiment preset in use (set by conf/experiment/*)
    workers: int = 1  # asynchronous worker processes (train.yaml defaults it to the CPU count)
    rollout_len: int = 30  # environment steps per update (n of the n-step return)
    envs_per_worker: int = 1  # envs each worker steps side by side, acting in one batched pass
    total_steps: int = 1_000_000  # stop after this many environment (agent) steps over all workers
    max_time: float | None = None  # stop after this many seconds of training; null = no limit
    target_reward: float | None = (
        None  # stop once the last-100-episode mean reaches it; null = never
    )
    seed: int = 0  # base seed; worker i uses seed + i
    checkpoint_every: int = (
        100_000  # env steps between periodic checkpoints (0 = only the final one)
    )
    keep_checkpoints: int = 3  # periodic checkpoints kept besides last.ckpt
    resume: str | None = (
        None  # checkpoint to continue from, or "latest": <run dir>/checkpoints/last.ckpt
    )
    log_every: float = 5.0  # seconds between metric reports (console, CSV, W&B)
    objective: str = "final_mean_reward"  # what a job returns to sweepers (see OBJECTIVES)
    video_every: int = 25  # worker 0 saves every n-th episode as a GIF (and to W&B); 0 = never
    # pin worker i and its engines to CPU i mod (CPUs available): true, false, or auto = pin
    # when workers >= CPUs (then the run uses every CPU anyway, so parallel jobs stay balanced)
    pin_cpus: Any = "auto"
    lock_optimizer_step: bool = True  # serialise the (~1 ms) shared optimizer step; see README
    start_method: str = "forkserver"  # torch.multiprocessing start method: forkserver or spawn
    shutdown_grace: float = 5.0  # seconds workers get to stop before they are terminated
    max_restarts: int = (
        3  # restarts allowed per worker (crash, kill, heartbeat) before the run stops
    )
    heartbeat_timeout: float = 120.0  # seconds without a message before a worker counts as hung
    max_skipped_updates: int = 100  # consecutive NaN/inf updates (all skipped) that stop the run


def register_configs() -> None:
    """Register the schemas and the ``cpu_count`` resolver (call once before Hydra composes)."""
    if not OmegaConf.has_resolver("cpu_count"):
        OmegaConf.register_new_resolver("cpu_count", available_cpus)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)


def _check(condition: bool, key: str, value: Any, allowed: str) -> None:
    if not condition:
        raise ConfigError(f"{key}={value!r}: {allowed}")


def pins_cpus(pin_cpus: bool | str, workers: int, cpus: int) -> bool:
    """Whether workers are pinned to CPUs under the ``pin_cpus`` setting."""
    if pin_cpus == "auto":
        return workers >= cpus
    return bool(pin_cpus)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """Check every value that has a rule; return the config as resolved plain data.

    Raises ConfigError (one line: field, value, what is allowed) on the first bad value.
    """
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(data, dict)
    for key in ("workers", "rollout_len", "envs_per_worker", "total_steps", "max_skipped_updates"):
        _check(_is_int(data[key]) and data[key] >= 1, key, data[key], "must be an integer >= 1")
    for key in ("checkpoint_every", "keep_checkpoints", "video_every", "max_restarts"):
        _check(_is_int(data[key]) and data[key] >= 0, key, data[key], "must be an integer >= 0")
    if data["max_time"] is not None:
        _check(data["max_time"] > 0, "max_time", data["max_time"], "must be > 0 seconds or null")
    _check(data["log_every"] > 0, "log_every", data["log_every"], "must be > 0 seconds")
    _check(
        data["heartbeat_timeout"] > 0, "heartbeat_timeout", data["heartbeat_timeout"], "must be > 0"
    )
    _check(data["shutdown_grace"] >= 0, "shutdown_grace", data["shutdown_grace"], "must be >= 0")
    _check(
        data["start_method"] in ("spawn", "forkserver"),
        "start_method",
        data["start_method"],
        "allowed: spawn, forkserver (fork is unsafe once torch or W&B threads exist)",
    )
    _check(
        data["pin_cpus"] in (True, False, "auto"),
        "pin_cpus",
        data["pin_cpus"],
        "allowed: true, false, auto",
    )
    _check(
        data["objective"] in OBJECTIVES,
        "objective",
        data["objective"],
        f"allowed: {', '.join(OBJECTIVES)}",
    )
    _validate_loss(data["loss"])
    _validate_optim(data["optim"])
    _validate_env(data["env"])
    _validate_logger(data["logger"])
    if data["resume"] not in (None, "latest"):
        path = Path(data["resume"]).expanduser()
        _check(
            path.is_file(),
            "resume",
            data["resume"],
            "must be an existing checkpoint file, or 'latest' (the run directory's last.ckpt)",
        )
    return data


def _validate_loss(loss: dict[str, Any]) -> None:
    _check(0 < loss["gamma"] <= 1, "loss.gamma", loss["gamma"], "must be in (0, 1]")
    _check(0 <= loss["gae_lambda"] <= 1, "loss.gae_lambda", loss["gae_lambda"], "must be in [0, 1]")
    _check(loss["value_coef"] >= 0, "loss.value_coef", loss["value_coef"], "must be >= 0")
    _check(loss["entropy_coef"] >= 0, "loss.entropy_coef", loss["entropy_coef"], "must be >= 0")
    _check(loss["max_grad_norm"] > 0, "loss.max_grad_norm", loss["max_grad_norm"], "must be > 0")


def _validate_optim(optim: dict[str, Any]) -> None:
    lr = optim.get("lr")
    _check(
        isinstance(lr, int | float) and not isinstance(lr, bool) and lr > 0,
        "optim.lr",
        lr,
        "must be a number > 0",
    )
    for key in ("eps", "alpha"):
        if key in optim:
            _check(optim[key] > 0, f"optim.{key}", optim[key], "must be > 0")


def _validate_env(env: dict[str, Any]) -> None:
    from a3c_exp.envs.factory import ENV_KINDS

    _check(env["kind"] in ENV_KINDS, "env.kind", env["kind"], f"allowed: {', '.join(ENV_KINDS)}")
    _check(
        _is_int(env["frame_skip"]) and env["frame_skip"] >= 1,
        "env.frame_skip",
        env["frame_skip"],
        "must be an integer >= 1",
    )
    _check(env["reward_scale"] > 0, "env.reward_scale", env["reward_scale"], "must be > 0")
    if env["kind"] == "vizdoom":
        from a3c_exp.envs.scenarios import ScenarioError, resolve_scenario

        _check(env["scenario"] is not None, "env.scenario", None, "a vizdoom env needs a scenario")
        try:
            resolve_scenario(env["scenario"])
        except ScenarioError as err:
            raise ConfigError(str(err)) from None
        _check(
            _is_int(env["frame_size"]) and env["frame_size"] >= 36,
            "env.frame_size",
            env["frame_size"],
            "must be an integer >= 36 (the conv stack needs it)",
        )
        _check(
            len(env["crop"]) == 4 and all(_is_int(c) and c >= 0 for c in env["crop"]),
            "env.crop",
            env["crop"],
            "must be 4 integers >= 0: top, bottom, left, right",
        )
        import vizdoom

        _check(
            hasattr(vizdoom.ScreenResolution, env["screen_resolution"]),
            "env.screen_resolution",
            env["screen_resolution"],
            "must be a vizdoom.ScreenResolution name such as RES_160X120",
        )
        if env["episode_timeout"] is not None:
            _check(
                _is_int(env["episode_timeout"]) and env["episode_timeout"] >= 1,
                "env.episode_timeout",
                env["episode_timeout"],
                "must be an integer >= 1 or null",
            )
    else:
        import gymnasium as gym

        env_id = env["id"] or ""
        if ":" in env_id:  # "package.module:EnvName-v0": the module registers the env
            import importlib

            module_name, _, env_id = env_id.partition(":")
            try:
                importlib.import_module(module_name)
            except ImportError as err:
                raise ConfigError(
                    f"env.id={env['id']!r}: cannot import {module_name}: {err}"
                ) from None
        _check(
            env_id in gym.registry,
            "env.id",
            env["id"],
            "not a registered gymnasium id (e.g. CartPole-v1, Acrobot-v1, LunarLander-v3)",
        )


def _validate_logger(logger: dict[str, Any]) -> None:
    _check(
        logger["kind"] in ("wandb", "none"), "logger.kind", logger["kind"], "allowed: wandb, none"
    )
    _check(
        logger["mode"] in ("offline", "online", "disabled"),
        "logger.mode",
        logger["mode"],
        "allowed: offline, online, disabled",
    )


def check_writable(directory: Path) -> None:
    """Fail before spawning if the run directory cannot take files."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise ConfigError(
            f"output directory {str(directory)!r}: not writable ({err.strerror})"
        ) from None
