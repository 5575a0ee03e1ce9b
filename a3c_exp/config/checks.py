"""The config's own rules: ranges and cross-field rules of the sections no other part owns.

Each check raises ``ConfigError`` with one line naming the field, the value and what is
allowed. The environment, the network and the runtime check their own sections
(``a3c_exp.envs.checks``, ``a3c_exp.models.shapes``, ``a3c_exp.runtime.checks``); all of them
are composed by ``a3c_exp.runtime.checks.validate``. Nothing here imports torch, an
environment or any other part of the package, so bad input is refused in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from a3c_exp.config.schema import (
    ANCHOR_TARGETS,
    OBJECTIVES,
    RUNTIME_KINDS,
    VALUE_TARGETS,
    AdamConfig,
    LocalRuntimeConfig,
    LossConfig,
    LossTermConfig,
    OptimConfig,
    RayRuntimeConfig,
    RuntimeConfig,
    TargetConfig,
    TensorBoardConfig,
    TrainConfig,
    WandbConfig,
)


class ConfigError(ValueError):
    """A config value that is out of range or inconsistent; the message is one line."""


def check(condition: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ConfigError ``<key>=<value>: <allowed>`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{key}={value!r}: {allowed}")


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Check the values whose rules belong to the config itself; return ``cfg`` unchanged.

    Raises ConfigError (one line: field, value, what is allowed) on the first bad value.
    """
    for key in ("workers", "rollout_len", "envs_per_worker", "total_steps", "max_skipped_updates"):
        value = getattr(cfg, key)
        check(is_int(value) and value >= 1, key, value, "must be an integer >= 1")
    check(is_int(cfg.seed) and cfg.seed >= 0, "seed", cfg.seed, "must be an integer >= 0")
    if cfg.trial_report_every is not None:
        check(
            is_int(cfg.trial_report_every) and cfg.trial_report_every >= 1,
            "trial_report_every",
            cfg.trial_report_every,
            "must be an integer >= 1 (env steps) or null",
        )
    check(cfg.video_every >= 0, "video_every", cfg.video_every, "must be >= 0 seconds")
    for key in ("checkpoint_every", "keep_checkpoints", "max_restarts"):
        value = getattr(cfg, key)
        check(is_int(value) and value >= 0, key, value, "must be an integer >= 0")
    if cfg.max_time is not None:
        check(cfg.max_time > 0, "max_time", cfg.max_time, "must be > 0 seconds or null")
    check(cfg.log_every > 0, "log_every", cfg.log_every, "must be > 0 seconds")
    check(cfg.heartbeat_timeout > 0, "heartbeat_timeout", cfg.heartbeat_timeout, "must be > 0")
    check(cfg.shutdown_grace >= 0, "shutdown_grace", cfg.shutdown_grace, "must be >= 0")
    if isinstance(cfg.runtime, LocalRuntimeConfig):
        check(
            cfg.runtime.lock_optimizer_step or cfg.checkpoint_every == 0,
            "runtime.lock_optimizer_step",
            cfg.runtime.lock_optimizer_step,
            "false needs checkpoint_every=0: a periodic checkpoint is only consistent when "
            "snapshots and optimizer steps share the step lock",
        )
    check(
        cfg.objective in OBJECTIVES, "objective", cfg.objective, f"allowed: {', '.join(OBJECTIVES)}"
    )
    check_logger(cfg.logger)
    for key, term in loss_terms(cfg):
        check(term.weight >= 0, f"{key}.weight", term.weight, "must be >= 0")
    if cfg.resume not in (None, "latest"):
        path = Path(cfg.resume).expanduser()
        check(
            path.is_file(),
            "resume",
            cfg.resume,
            "must be an existing checkpoint file, or 'latest' (the run directory's last.ckpt)",
        )
    check_runtime_values(cfg.runtime)
    check_loss(cfg.loss)
    check_optim(cfg.optim)
    model_variables = getattr(cfg.model, "game_variables", 0)
    env_variables = getattr(cfg.env, "game_variables", [])
    check(
        isinstance(cfg.model, TargetConfig) or model_variables == len(env_variables),
        "model.game_variables",
        model_variables,
        f"must equal the number of env.game_variables ({len(env_variables)}: "
        f"{env_variables}); only model=conv_lstm reads them, only env.kind=vizdoom has them",
    )
    return cfg


def loss_terms(cfg: TrainConfig) -> list[tuple[str, LossTermConfig]]:
    """The run's loss terms with their config keys: ``intrinsic`` first, then ``aux.<name>``."""
    terms = [("intrinsic", cfg.intrinsic)] if cfg.intrinsic is not None else []
    return terms + [(f"aux.{name}", term) for name, term in cfg.aux.items()]


def check_logger(sinks: dict[str, Any]) -> None:
    """The built-in sinks' values (``logger.wandb``, ``logger.tensorboard``)."""
    wandb = sinks.get("wandb")
    if isinstance(wandb, WandbConfig):
        check(
            wandb.mode in ("offline", "online", "disabled"),
            "logger.wandb.mode",
            wandb.mode,
            "allowed: offline, online, disabled",
        )
    tensorboard = sinks.get("tensorboard")
    if isinstance(tensorboard, TensorBoardConfig):
        check(
            tensorboard.flush_secs > 0,
            "logger.tensorboard.flush_secs",
            tensorboard.flush_secs,
            "must be > 0 seconds",
        )


def check_runtime_values(runtime: RuntimeConfig) -> None:
    """The ``runtime`` section's values (reaching Ray is ``a3c_exp.runtime.checks``' part)."""
    check(
        runtime.kind in RUNTIME_KINDS,
        "runtime.kind",
        runtime.kind,
        f"allowed: {', '.join(RUNTIME_KINDS)}",
    )
    if isinstance(runtime, LocalRuntimeConfig):
        check(
            runtime.start_method in ("spawn", "forkserver"),
            "runtime.start_method",
            runtime.start_method,
            "allowed: spawn, forkserver (fork is unsafe once torch or W&B threads exist)",
        )
        check(
            runtime.pin_cpus in (True, False, "auto"),
            "runtime.pin_cpus",
            runtime.pin_cpus,
            "allowed: true, false, auto",
        )
    if not isinstance(runtime, RayRuntimeConfig):
        return
    check(
        runtime.cpus_per_worker > 0,
        "runtime.cpus_per_worker",
        runtime.cpus_per_worker,
        "must be > 0",
    )
    check(runtime.server_cpus >= 0, "runtime.server_cpus", runtime.server_cpus, "must be >= 0")
    check(
        runtime.report_seconds > 0,
        "runtime.report_seconds",
        runtime.report_seconds,
        "must be > 0 seconds",
    )


def check_loss(loss: LossConfig) -> None:
    """The ``loss`` coefficients."""
    check(0 < loss.gamma <= 1, "loss.gamma", loss.gamma, "must be in (0, 1]")
    check(0 <= loss.gae_lambda <= 1, "loss.gae_lambda", loss.gae_lambda, "must be in [0, 1]")
    check(loss.value_coef >= 0, "loss.value_coef", loss.value_coef, "must be >= 0")
    check(loss.entropy_coef >= 0, "loss.entropy_coef", loss.entropy_coef, "must be >= 0")
    check(
        loss.huber_delta is None or loss.huber_delta > 0,
        "loss.huber_delta",
        loss.huber_delta,
        "must be > 0, or null for the squared error",
    )
    check(
        loss.value_target in VALUE_TARGETS,
        "loss.value_target",
        loss.value_target,
        f"allowed: {', '.join(VALUE_TARGETS)}",
    )
    check(loss.max_grad_norm > 0, "loss.max_grad_norm", loss.max_grad_norm, "must be > 0")
    check(loss.anchor_coef >= 0, "loss.anchor_coef", loss.anchor_coef, "must be >= 0")
    check(0 <= loss.anchor_decay < 1, "loss.anchor_decay", loss.anchor_decay, "must be in [0, 1)")
    check(
        loss.anchor_on in ANCHOR_TARGETS,
        "loss.anchor_on",
        loss.anchor_on,
        f"allowed: {', '.join(ANCHOR_TARGETS)}",
    )
    check(loss.anchor_margin >= 0, "loss.anchor_margin", loss.anchor_margin, "must be >= 0")
    for key in ("anchor_decay", "anchor_on", "anchor_margin"):
        value = getattr(loss, key)
        check(
            loss.anchor_coef > 0 or value == getattr(LossConfig, key),
            f"loss.{key}",
            value,
            "applies only with loss.anchor_coef > 0 (the anchor's weight)",
        )


def check_optim(optim: OptimConfig) -> None:
    """The ``optim`` section's hyperparameters."""
    check(optim.lr > 0, "optim.lr", optim.lr, "must be a number > 0")
    check(optim.eps > 0, "optim.eps", optim.eps, "must be > 0")
    check(optim.weight_decay >= 0, "optim.weight_decay", optim.weight_decay, "must be >= 0")
    check(
        optim.kl_target is None or optim.kl_target > 0,
        "optim.kl_target",
        optim.kl_target,
        "must be a number > 0 or null",
    )
    check(
        optim.anneal_steps is None or (is_int(optim.anneal_steps) and optim.anneal_steps > 0),
        "optim.anneal_steps",
        optim.anneal_steps,
        "must be an integer > 0 or null",
    )
    check(
        0 <= optim.anneal_to < 1,
        "optim.anneal_to",
        optim.anneal_to,
        "must be a share of the rate in [0, 1)",
    )
    check(
        optim.anneal_to == 0 or optim.anneal_steps is not None,
        "optim.anneal_to",
        optim.anneal_to,
        "applies only with optim.anneal_steps set (the anneal's length in env steps)",
    )
    if isinstance(optim, AdamConfig):
        check(
            len(optim.betas) == 2 and all(0 <= b < 1 for b in optim.betas),
            "optim.betas",
            optim.betas,
            "must be two numbers in [0, 1)",
        )
    else:
        check(0 <= optim.alpha < 1, "optim.alpha", optim.alpha, "must be in [0, 1)")
