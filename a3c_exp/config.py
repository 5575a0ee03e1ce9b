"""The typed config of a run: schemas (registered in Hydra's ConfigStore) and their checks.

The frozen dataclasses below are the config. Hydra composes into a writable copy of the schema
(so unknown keys and wrong types are refused while composing); ``load_config`` then turns the
result into one frozen ``TrainConfig`` (model and optimizer sections typed by their registered
names) and ``validate`` checks ranges and cross-field rules, raising ``ConfigError`` with one
line naming the field, the value and what is allowed. After that nobody indexes a dict by
string: each part of the program receives the typed section it needs.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, AnyNode, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from omegaconf.nodes import IntegerNode

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


@dataclass(frozen=True)
class EnvConfig:
    """Which environment to train on and how to preprocess it."""

    name: str = MISSING  # short label used in run names, e.g. "doom" or "cartpole"
    kind: str = MISSING  # "vizdoom" (a scenario .cfg) or "gym" (a gymnasium id)
    scenario: str | None = None  # vizdoom: shipped scenario name (basic, ...) or path to a .cfg
    id: str | None = None  # gym: environment id, e.g. CartPole-v1
    kwargs: dict[str, Any] = field(default_factory=dict)  # gym: extra gymnasium.make arguments
    frame_skip: int = 1  # each action is repeated for this many tics/frames
    reward_scale: float = 1.0  # rewards are multiplied by this before learning and reporting
    frame_size: int = 84  # vizdoom, atari: frames are resized to frame_size x frame_size
    crop: list[int] = field(default_factory=lambda: [10, 10, 30, 30])  # vizdoom: top,bottom,l,r
    screen_resolution: str = "RES_160X120"  # vizdoom: engine render resolution
    episode_timeout: int | None = None  # vizdoom: tics per episode; null keeps the scenario's own
    bootstrap_truncated: bool = False  # time-limit ends bootstrap from V(s) instead of failing
    rgb: bool = False  # vizdoom: colour frames (3 channels) instead of grayscale (1)
    # vizdoom: game variables (vizdoom.GameVariable names, e.g. [HEALTH, AMMO2]) fed to the
    # network beside the image: they ride in one extra observation channel (first pixels, values
    # clipped to 0..255) and need model.game_variables set to how many there are
    game_variables: list[str] = field(default_factory=list)
    frame_stack: int = 1  # atari: the last n frames form the observation (n channels)
    clip_rewards: bool = False  # atari: rewards clipped to their sign (-1, 0, 1) for learning


@dataclass(frozen=True)
class LossConfig:
    """A3C loss coefficients."""

    gamma: float = 0.99  # discount factor, in (0, 1]
    gae_lambda: float = 1.0  # GAE lambda in [0, 1]; 1.0 = tutorial advantage R - V(s)
    value_coef: float = 0.5  # weight of the value loss 0.5 * sum (R - V)^2
    entropy_coef: float = 0.01  # beta: weight of the entropy bonus
    max_grad_norm: float = 40.0  # gradients are clipped to this global norm


@dataclass(frozen=True)
class LoggerConfig:
    """Where metrics go besides the console and the run directory's CSV."""

    kind: str = "none"  # "wandb" or "none"
    project: str = "a3c-exp"  # W&B project
    entity: str | None = None  # W&B entity (user or team); null = the default one
    group: str | None = None  # W&B group; null = the sweep's group in a --multirun (derived)
    tags: list[str] = field(default_factory=list)  # W&B tags
    job_type: str = "train"  # W&B job type
    name: str | None = None  # W&B run name; null = built from the job's overrides
    mode: str = "offline"  # W&B mode: offline (default, no network), online or disabled
    log_checkpoints: bool = False  # log the final and best checkpoints as W&B model artifacts


@dataclass(frozen=True)
class ConvLSTMConfig:
    """``model=conv_lstm``: the tutorial's conv stack, fc layer and LSTM (ConvLSTMActorCritic)."""

    name: str = "conv_lstm"  # registry name of the network
    channels: list[int] = field(default_factory=lambda: [16, 32])  # output channels per conv
    kernel_sizes: list[int] = field(default_factory=lambda: [8, 4])  # kernel size per conv
    strides: list[int] = field(default_factory=lambda: [4, 2])  # stride per conv
    fc_size: int = 256  # units of the fully connected layer after the convs
    lstm_size: int = 256  # LSTM units; 0 = no LSTM (feed-forward)
    obs_normalization: str = "standardize"  # standardize (per frame) or scale (/255, tutorial)
    # game variables carried by the observation's last channel (env.game_variables: same count);
    # they join the fc features, divided by 100. 0 = every channel is image
    game_variables: int = 0


@dataclass(frozen=True)
class MLPConfig:
    """``model=mlp``: fully connected encoder for vector observations (MLPActorCritic)."""

    name: str = "mlp"  # registry name of the network
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])  # units per hidden layer
    lstm_size: int = 0  # LSTM units after the encoder; 0 = none
    activation: str = "tanh"  # tanh or relu


@dataclass(frozen=True)
class AdamConfig:
    """``optim=shared_adam``: Adam with moments in shared memory (SharedAdam)."""

    name: str = "shared_adam"  # registry name of the optimizer
    lr: float = 1e-4  # learning rate
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # moment decay rates
    eps: float = 1e-8  # added to the root of the second moment
    weight_decay: float = 0.0  # L2 penalty
    amsgrad: bool = False  # keep the maximum of the second moments


@dataclass(frozen=True)
class RMSpropConfig:
    """``optim=shared_rmsprop``: RMSProp with shared statistics (SharedRMSprop), as in the paper."""

    name: str = "shared_rmsprop"  # registry name of the optimizer
    lr: float = 7e-4  # learning rate
    alpha: float = 0.99  # decay of the squared-gradient average
    eps: float = 0.1  # added to the root of the squared-gradient average
    weight_decay: float = 0.0  # L2 penalty
    momentum: float = 0.0  # momentum factor
    centered: bool = False  # normalise by the variance instead of the second moment


@dataclass(frozen=True)
class RuntimeConfig:
    """Which backend runs the workers (``runtime=local`` or ``runtime=ray``) and its settings."""

    kind: str = "local"  # local: processes sharing memory; ray: actors and a parameter server
    address: str | None = None  # ray: null starts a local Ray; "auto" or "ray://host:port" joins
    cpus_per_worker: float = 1.0  # ray: CPUs each worker actor reserves
    server_cpus: float = 0.0  # ray: CPUs the parameter-server actor reserves
    report_seconds: float = 1.0  # ray: a worker reports its updates (and can stop) this often
    spread: bool = True  # ray: place the worker actors on as many nodes as possible


RUNTIME_KINDS = ("local", "ray")


MODEL_CONFIGS: dict[str, type] = {"conv_lstm": ConvLSTMConfig, "mlp": MLPConfig}
"""Network names (``model.name``) and their typed sections; the networks are in a3c_exp.models."""

OPTIM_CONFIGS: dict[str, type] = {"shared_adam": AdamConfig, "shared_rmsprop": RMSpropConfig}
"""Optimizer names (``optim.name``) and their typed sections; the classes are in a3c_exp.optim."""

ModelConfig = ConvLSTMConfig | MLPConfig
OptimConfig = AdamConfig | RMSpropConfig


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run. After ``load_config`` it is frozen and fully typed."""

    env: EnvConfig = field(default_factory=EnvConfig)
    model: Any = MISSING  # network: name + its arguments (conf/model/; typed by MODEL_CONFIGS)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: Any = MISSING  # shared optimizer: name + its arguments (conf/optim/; OPTIM_CONFIGS)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    experiment: str | None = None  # name of the experiment preset in use (conf/experiment/*)
    workers: int = 1  # asynchronous worker processes (train.yaml defaults it to the CPU count)
    rollout_len: int = 30  # environment steps per update (n of the n-step return)
    envs_per_worker: int = 1  # envs each worker steps side by side, acting in one batched pass
    total_steps: int = 1_000_000  # stop after this many environment (agent) steps, all workers
    max_time: float | None = None  # stop after this many seconds of training; null = no limit
    target_reward: float | None = None  # stop once the last-100 mean reaches it; null = never
    # the run's seed (>= 0): every random stream of the run (each worker's envs and sampling,
    # after each restart or resume) is derived from it with numpy.random.SeedSequence, so runs
    # with different seeds share no stream
    seed: int = 0
    checkpoint_every: int = 100_000  # env steps between periodic checkpoints (0 = final only)
    keep_checkpoints: int = 3  # periodic checkpoints kept besides last.ckpt
    # checkpoint to continue from, or "latest" (<run dir>/checkpoints/last.ckpt); after
    # load_config's caller resolves it, always an absolute path (derived)
    resume: str | None = None
    # resume: false starts the optimizer's statistics afresh (needed to resume under another
    # optimizer); the network weights and counters are restored either way
    resume_optimizer_state: bool = True
    log_every: float = 5.0  # seconds between metric reports (console, CSV, W&B)
    objective: str = "final_mean_reward"  # what a job returns to sweepers (see OBJECTIVES)
    # seconds of wall time between episodes worker 0 saves as a GIF (and to W&B): the first
    # episode, then the next one to start after each interval; 0 = never
    video_every: float = 120.0
    # pin worker i and its engines to CPU i mod (CPUs available): true, false, or auto = pin
    # when workers >= CPUs (then the run uses every CPU anyway, so parallel jobs stay balanced)
    pin_cpus: Any = "auto"
    # the CPU of each worker (worker i gets worker_cpus[i mod len]); null = none. Derived from
    # pin_cpus before the run starts unless set explicitly
    worker_cpus: list[int] | None = None
    lock_optimizer_step: bool = True  # serialise the (~1 ms) shared optimizer step; see README
    start_method: str = "forkserver"  # torch.multiprocessing start method: forkserver or spawn
    shutdown_grace: float = 5.0  # seconds workers get to stop before they are terminated
    max_restarts: int = 3  # restarts allowed per worker (crash, kill, heartbeat) before failing
    heartbeat_timeout: float = 120.0  # seconds without a message before a worker counts as hung
    max_skipped_updates: int = 100  # consecutive NaN/inf updates of one worker that stop the run
    # env steps between two reports of the running objective to a sweep's trial (pruning
    # compares trials at equal steps); set by the a3c_optuna sweeper. null = no reports
    trial_report_every: int | None = None


@dataclass(frozen=True)
class EvalConfig:
    """Every knob of an evaluation (``python -m a3c_exp.evaluate``; conf/eval.yaml)."""

    checkpoint: str = MISSING  # a checkpoint written by a3c_exp.train (.../checkpoints/last.ckpt)
    episodes: int = 20  # episodes to play
    greedy: bool = False  # true: take the most probable action; false: sample from the policy
    seed: int = 12345  # seed of the evaluation episodes (different from training seeds)
    record: bool = False  # write a GIF of the first episode into the output directory
    max_steps: int = 100_000  # safety cap on the steps of one episode


def thawed_schema(cls: type) -> DictConfig:
    """The structured config of a frozen dataclass, writable so Hydra can merge into it.

    The dataclasses are frozen because the validated config must not change during a run;
    OmegaConf marks the nodes of a frozen dataclass read-only, which would also stop Hydra from
    applying presets and overrides, so composition works on a writable copy of the same schema.
    """
    node = OmegaConf.structured(cls)
    _clear_readonly(node)
    return node


def composition_schema(cls: type) -> DictConfig:
    """``thawed_schema`` with its integer fields untyped: what Hydra composes into.

    A whole-number float such as ``total_steps=1e6`` must reach ``typed_config`` (which turns
    it into an int, and refuses ``2.5`` in one line) instead of failing Hydra's merge.
    """
    node = thawed_schema(cls)
    _untype_integers(node)
    return node


def _untype_integers(node: DictConfig) -> None:
    content = node.__dict__["_content"]
    for key in list(content):
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _untype_integers(child)
        elif isinstance(child, IntegerNode) or (
            isinstance(child, ListConfig) and child._metadata.element_type is int
        ):
            value = OmegaConf.to_container(child) if isinstance(child, ListConfig) else child
            plain = child._value() if isinstance(child, IntegerNode) else value
            content[key] = (
                AnyNode(plain, key=key, parent=node)
                if isinstance(child, IntegerNode)
                else ListConfig(plain, key=key, parent=node)
            )


def _clear_readonly(node: Any) -> None:
    OmegaConf.set_readonly(node, None)
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        child = node._get_node(key)
        if isinstance(child, DictConfig | ListConfig):
            _clear_readonly(child)


def register_configs() -> None:
    """Register the schemas and the ``cpu_count`` resolver (call once before Hydra composes)."""
    if not OmegaConf.has_resolver("cpu_count"):
        OmegaConf.register_new_resolver("cpu_count", available_cpus)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=composition_schema(TrainConfig))


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


CALL_KEYS = frozenset({"_target_", "_partial_", "_args_", "_recursive_", "_convert_"})
"""Keys that make Hydra's ``instantiate`` call something: never accepted in a config here."""


def refuse_call_keys(data: Any, path: str = "") -> None:
    """Raise ConfigError naming the first key anywhere in ``data`` that would call code."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if key in CALL_KEYS:
                raise ConfigError(
                    f"{where}: names code to call; configs here are plain values (networks and "
                    "optimizers are chosen by name: model.name, optim.name)"
                )
            refuse_call_keys(value, where)
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            refuse_call_keys(value, f"{path}[{index}]")


def whole_numbers(cls: type, data: Any, key: str) -> Any:
    """``data`` with a whole-number float turned into an int wherever ``cls`` asks for an int
    (``total_steps=1e6``), in nested sections and lists too; any other float there is refused.

    Raises ConfigError (one line) for a float that is not whole or a string that is no integer.
    """
    if not isinstance(data, Mapping) or not dataclasses.is_dataclass(cls):
        return data
    hints = typing.get_type_hints(cls)
    converted = dict(data)
    for item in dataclasses.fields(cls):
        if item.name not in converted:
            continue
        where = f"{key}.{item.name}" if key else item.name
        hint = hints[item.name]
        args = typing.get_args(hint)
        if dataclasses.is_dataclass(hint):
            converted[item.name] = whole_numbers(hint, converted[item.name], where)
        elif hint is int or (int in args and type(None) in args):
            converted[item.name] = _as_int(converted[item.name], where)
        elif list in (hint, typing.get_origin(hint)) or any(
            typing.get_origin(arg) is list for arg in args
        ):
            inner = [typing.get_args(arg) for arg in (hint, *args) if typing.get_origin(arg)]
            value = converted[item.name]
            if (int,) in inner and isinstance(value, list | tuple):
                converted[item.name] = [_as_int(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return converted


def _as_int(value: Any, key: str) -> Any:
    if isinstance(value, float):
        _check(value.is_integer(), key, value, "must be a whole number (an integer)")
        return int(value)
    if isinstance(value, str) and not value.lstrip("+-").isdigit():
        raise ConfigError(f"{key}={value!r}: must be an integer")
    return value


def parse_section(cls: type, data: Any, key: str) -> Any:
    """``data`` merged into ``cls``'s schema and built as ``cls`` (unknown keys and wrong types
    refused with one line naming ``key``; whole-number floats taken as integers)."""
    data = whole_numbers(cls, data, key)
    try:
        return OmegaConf.to_object(OmegaConf.merge(thawed_schema(cls), data))
    except OmegaConfBaseException as err:
        raise ConfigError(_omegaconf_error_line(err, key)) from None


def _omegaconf_error_line(err: OmegaConfBaseException, prefix: str) -> str:
    full_key = getattr(err, "full_key", None) or ""
    where = ".".join(part for part in (prefix, full_key) if part)
    message = str(err).strip().splitlines()[0]
    return f"{where}: {message}" if where else message


def _parse_choice(registry: dict[str, type], data: Any, group: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{group}={data!r}: must be a {group} section with a name")
    name = data.get("name")
    if name not in registry:
        raise ConfigError(f"{group}.name={name!r}: allowed: {', '.join(registry)}")
    return parse_section(registry[name], data, group)


def parse_model(data: Any) -> ModelConfig:
    """A ``model`` section as its registered dataclass (chosen by ``name``)."""
    return _parse_choice(MODEL_CONFIGS, data, "model")


def parse_optim(data: Any) -> OptimConfig:
    """An ``optim`` section as its registered dataclass (chosen by ``name``)."""
    return _parse_choice(OPTIM_CONFIGS, data, "optim")


LEGACY_NAMES = {
    "a3c_exp.models.ConvLSTMActorCritic": "conv_lstm",
    "a3c_exp.models.MLPActorCritic": "mlp",
    "a3c_exp.optim.SharedAdam": "shared_adam",
    "a3c_exp.optim.SharedRMSprop": "shared_rmsprop",
}
"""Import paths that format-1 checkpoints stored, and the registry names they meant."""


def upgrade_legacy_sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a format-1 ``model``/``optim`` section's own class path to its registry name.

    Pure data: a path is only looked up in ``LEGACY_NAMES``, never imported; any other call key
    is left in place for ``refuse_call_keys`` to refuse.
    """
    upgraded = dict(data)
    for group in ("model", "optim"):
        section = upgraded.get(group)
        if isinstance(section, Mapping) and section.get("_target_") in LEGACY_NAMES:
            section = dict(section)
            section["name"] = LEGACY_NAMES[section.pop("_target_")]
            if section.get("_partial_") is True:
                section.pop("_partial_")
            upgraded[group] = section
    return upgraded


def typed_config(cfg: DictConfig | Mapping[str, Any]) -> TrainConfig:
    """The composed config (or a checkpoint's plain copy of one) as a frozen ``TrainConfig``.

    Every value is type-checked against the schema, unknown keys are refused, and the model and
    optimizer sections become their registered dataclasses. Nothing in ``cfg`` is called:
    keys such as ``_target_`` are refused (see ``refuse_call_keys``).
    """
    if isinstance(cfg, DictConfig):
        try:
            data = OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException as err:
            raise ConfigError(_omegaconf_error_line(err, "")) from None
    else:
        data = dict(cfg)
    assert isinstance(data, dict)
    refuse_call_keys(data)
    top = parse_section(TrainConfig, data, "")
    return replace(top, model=parse_model(data.get("model")), optim=parse_optim(data.get("optim")))


def load_config(cfg: DictConfig | Mapping[str, Any]) -> TrainConfig:
    """``typed_config`` then ``validate``: the one way a run gets its config."""
    return validate(typed_config(cfg))


def load_eval_config(cfg: DictConfig | Mapping[str, Any]) -> EvalConfig:
    """The composed evaluation config as a checked, frozen ``EvalConfig`` (one-line errors)."""
    if isinstance(cfg, DictConfig) and OmegaConf.is_missing(cfg, "checkpoint"):
        raise ConfigError(
            "checkpoint=???: required: the checkpoint to evaluate, e.g. "
            "checkpoint=outputs/<date>/<time>/checkpoints/last.ckpt"
        )
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    data = {k: v for k, v in data.items() if k != "hydra"}
    eval_cfg = parse_section(EvalConfig, data, "")
    for key in ("episodes", "max_steps"):
        value = getattr(eval_cfg, key)
        _check(value >= 1, key, value, "must be an integer >= 1")
    return eval_cfg


def as_plain_data(cfg: Any) -> dict[str, Any]:
    """A typed config as plain data (dicts, lists, scalars): for checkpoints, W&B and logs."""
    return asdict(cfg)


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check every value that has a rule; return ``cfg`` unchanged when all pass.

    Raises ConfigError (one line: field, value, what is allowed) on the first bad value.
    """
    for key in ("workers", "rollout_len", "envs_per_worker", "total_steps", "max_skipped_updates"):
        value = getattr(cfg, key)
        _check(_is_int(value) and value >= 1, key, value, "must be an integer >= 1")
    _check(_is_int(cfg.seed) and cfg.seed >= 0, "seed", cfg.seed, "must be an integer >= 0")
    if cfg.trial_report_every is not None:
        _check(
            _is_int(cfg.trial_report_every) and cfg.trial_report_every >= 1,
            "trial_report_every",
            cfg.trial_report_every,
            "must be an integer >= 1 (env steps) or null",
        )
    _check(cfg.video_every >= 0, "video_every", cfg.video_every, "must be >= 0 seconds")
    for key in ("checkpoint_every", "keep_checkpoints", "max_restarts"):
        value = getattr(cfg, key)
        _check(_is_int(value) and value >= 0, key, value, "must be an integer >= 0")
    if cfg.max_time is not None:
        _check(cfg.max_time > 0, "max_time", cfg.max_time, "must be > 0 seconds or null")
    _check(cfg.log_every > 0, "log_every", cfg.log_every, "must be > 0 seconds")
    _check(cfg.heartbeat_timeout > 0, "heartbeat_timeout", cfg.heartbeat_timeout, "must be > 0")
    _check(cfg.shutdown_grace >= 0, "shutdown_grace", cfg.shutdown_grace, "must be >= 0")
    _check(
        cfg.start_method in ("spawn", "forkserver"),
        "start_method",
        cfg.start_method,
        "allowed: spawn, forkserver (fork is unsafe once torch or W&B threads exist)",
    )
    _check(
        cfg.pin_cpus in (True, False, "auto"),
        "pin_cpus",
        cfg.pin_cpus,
        "allowed: true, false, auto",
    )
    if cfg.worker_cpus is not None:
        cpus = sorted(_allowed_cpus())
        _check(
            len(cfg.worker_cpus) > 0 and all(c in cpus for c in cfg.worker_cpus),
            "worker_cpus",
            cfg.worker_cpus,
            f"must be a non-empty list of CPUs this process may use: {cpus}, or null",
        )
    _check(
        cfg.lock_optimizer_step or cfg.checkpoint_every == 0,
        "lock_optimizer_step",
        cfg.lock_optimizer_step,
        "false needs checkpoint_every=0: a periodic checkpoint is only consistent when "
        "snapshots and optimizer steps share the step lock",
    )
    _check(
        cfg.objective in OBJECTIVES, "objective", cfg.objective, f"allowed: {', '.join(OBJECTIVES)}"
    )
    _validate_runtime(cfg.runtime)
    _validate_loss(cfg.loss)
    _validate_optim(cfg.optim)
    _validate_env(cfg.env)
    _validate_model(cfg.model)
    if isinstance(cfg.model, ConvLSTMConfig) and cfg.env.kind in ("atari", "vizdoom"):
        from a3c_exp.models.actor_critic import smallest_frame

        smallest = smallest_frame(cfg.model.kernel_sizes, cfg.model.strides)
        _check(
            cfg.env.frame_size >= smallest,
            "env.frame_size",
            cfg.env.frame_size,
            f"must be >= {smallest}: the conv stack (model.kernel_sizes="
            f"{cfg.model.kernel_sizes}, model.strides={cfg.model.strides}) needs frames of at "
            f"least {smallest}x{smallest}",
        )
    model_variables = getattr(cfg.model, "game_variables", 0)
    _check(
        model_variables == len(cfg.env.game_variables),
        "model.game_variables",
        model_variables,
        f"must equal the number of env.game_variables ({len(cfg.env.game_variables)}: "
        f"{cfg.env.game_variables}); only model=conv_lstm reads them",
    )
    _validate_logger(cfg.logger)
    if cfg.resume not in (None, "latest"):
        path = Path(cfg.resume).expanduser()
        _check(
            path.is_file(),
            "resume",
            cfg.resume,
            "must be an existing checkpoint file, or 'latest' (the run directory's last.ckpt)",
        )
    return cfg


def _validate_model(model: ModelConfig) -> None:
    if not isinstance(model, ConvLSTMConfig):
        return
    _check(len(model.channels) >= 1, "model.channels", model.channels, "must list at least 1 conv")
    for key in ("channels", "kernel_sizes", "strides"):
        values = getattr(model, key)
        _check(
            len(values) == len(model.channels) and all(_is_int(v) and v >= 1 for v in values),
            f"model.{key}",
            values,
            f"must be {len(model.channels)} integers >= 1, one per conv (model.channels has "
            f"{len(model.channels)})",
        )


def _allowed_cpus() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def _validate_runtime(runtime: RuntimeConfig) -> None:
    _check(
        runtime.kind in RUNTIME_KINDS,
        "runtime.kind",
        runtime.kind,
        f"allowed: {', '.join(RUNTIME_KINDS)}",
    )
    _check(
        runtime.cpus_per_worker > 0,
        "runtime.cpus_per_worker",
        runtime.cpus_per_worker,
        "must be > 0",
    )
    _check(runtime.server_cpus >= 0, "runtime.server_cpus", runtime.server_cpus, "must be >= 0")
    _check(
        runtime.report_seconds > 0,
        "runtime.report_seconds",
        runtime.report_seconds,
        "must be > 0 seconds",
    )
    if runtime.kind == "ray":
        import importlib.util

        _check(
            importlib.util.find_spec("ray") is not None,
            "runtime",
            "ray",
            "needs Ray, which is not installed: pip install -c constraints.txt -e '.[ray]'",
        )


def _validate_loss(loss: LossConfig) -> None:
    _check(0 < loss.gamma <= 1, "loss.gamma", loss.gamma, "must be in (0, 1]")
    _check(0 <= loss.gae_lambda <= 1, "loss.gae_lambda", loss.gae_lambda, "must be in [0, 1]")
    _check(loss.value_coef >= 0, "loss.value_coef", loss.value_coef, "must be >= 0")
    _check(loss.entropy_coef >= 0, "loss.entropy_coef", loss.entropy_coef, "must be >= 0")
    _check(loss.max_grad_norm > 0, "loss.max_grad_norm", loss.max_grad_norm, "must be > 0")


def _validate_optim(optim: OptimConfig) -> None:
    _check(optim.lr > 0, "optim.lr", optim.lr, "must be a number > 0")
    _check(optim.eps > 0, "optim.eps", optim.eps, "must be > 0")
    _check(optim.weight_decay >= 0, "optim.weight_decay", optim.weight_decay, "must be >= 0")
    if isinstance(optim, AdamConfig):
        _check(
            len(optim.betas) == 2 and all(0 <= b < 1 for b in optim.betas),
            "optim.betas",
            optim.betas,
            "must be two numbers in [0, 1)",
        )
    else:
        _check(0 <= optim.alpha < 1, "optim.alpha", optim.alpha, "must be in [0, 1)")


def _validate_env(env: EnvConfig) -> None:
    from a3c_exp.envs.factory import ENV_KINDS

    _check(env.kind in ENV_KINDS, "env.kind", env.kind, f"allowed: {', '.join(ENV_KINDS)}")
    _check(env.frame_skip >= 1, "env.frame_skip", env.frame_skip, "must be an integer >= 1")
    _check(env.reward_scale > 0, "env.reward_scale", env.reward_scale, "must be > 0")
    if env.kind == "vizdoom":
        from a3c_exp.envs.scenarios import ScenarioError, resolve_scenario

        _check(env.scenario is not None, "env.scenario", None, "a vizdoom env needs a scenario")
        try:
            resolve_scenario(env.scenario)
        except ScenarioError as err:
            raise ConfigError(str(err)) from None
        _check(
            env.frame_size >= 36,
            "env.frame_size",
            env.frame_size,
            "must be an integer >= 36 (the conv stack needs it)",
        )
        _check(
            len(env.crop) == 4 and all(c >= 0 for c in env.crop),
            "env.crop",
            env.crop,
            "must be 4 integers >= 0: top, bottom, left, right",
        )
        import vizdoom

        _check(
            hasattr(vizdoom.ScreenResolution, env.screen_resolution),
            "env.screen_resolution",
            env.screen_resolution,
            "must be a vizdoom.ScreenResolution name such as RES_160X120",
        )
        if env.episode_timeout is not None:
            _check(
                env.episode_timeout >= 1,
                "env.episode_timeout",
                env.episode_timeout,
                "must be an integer >= 1 or null",
            )
        unknown = [v for v in env.game_variables if not hasattr(vizdoom.GameVariable, v)]
        _check(
            not unknown,
            "env.game_variables",
            env.game_variables,
            "must be vizdoom.GameVariable names such as HEALTH, AMMO2, ARMOR",
        )
        _check(
            len(env.game_variables) <= env.frame_size**2,
            "env.game_variables",
            env.game_variables,
            "at most frame_size^2 variables fit in the observation channel",
        )
    else:
        _check(not env.rgb, "env.rgb", env.rgb, "a vizdoom option; must be false here")
        _check(
            not env.game_variables,
            "env.game_variables",
            env.game_variables,
            "a vizdoom option; must be empty here",
        )
        _check(env.frame_stack >= 1, "env.frame_stack", env.frame_stack, "must be an integer >= 1")
        import gymnasium as gym

        if env.kind == "atari":
            from a3c_exp.envs.factory import register_atari

            try:
                register_atari()
            except ImportError:
                raise ConfigError(
                    "env.kind='atari': needs ale-py (pip install -e '.[atari]')"
                ) from None
            _check(env.frame_size >= 1, "env.frame_size", env.frame_size, "must be an integer >= 1")

        env_id = env.id or ""
        if ":" in env_id:  # "package.module:EnvName-v0": the module registers the env
            import importlib

            module_name, _, env_id = env_id.partition(":")
            try:
                importlib.import_module(module_name)
            except ImportError as err:
                raise ConfigError(
                    f"env.id={env.id!r}: cannot import {module_name}: {err}"
                ) from None
        _check(
            env_id in gym.registry,
            "env.id",
            env.id,
            "not a registered gymnasium id (e.g. CartPole-v1, Acrobot-v1, LunarLander-v3)",
        )


def _validate_logger(logger: LoggerConfig) -> None:
    _check(logger.kind in ("wandb", "none"), "logger.kind", logger.kind, "allowed: wandb, none")
    _check(
        logger.mode in ("offline", "online", "disabled"),
        "logger.mode",
        logger.mode,
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
