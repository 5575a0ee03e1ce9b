"""Loading the config: Hydra's ConfigStore, parsing into the schema, ``load_config``.

Hydra composes into a writable copy of the schema (so unknown keys and wrong types are refused
while composing); ``load_config`` then turns the result into one frozen ``TrainConfig`` (model
and optimizer sections typed by their registered names) and checks the config's own rules
(``a3c_exp.config.checks``). Each part then checks its own section
(``a3c_exp.runtime.checks.validate`` composes them). After that nobody indexes a dict by
string: each part of the program receives the typed section it needs.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import AnyNode, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from omegaconf.nodes import IntegerNode

from a3c_exp.config.checks import ConfigError, check, check_config
from a3c_exp.config.schema import (
    ENV_CONFIGS,
    MODEL_CONFIGS,
    OPTIM_CONFIGS,
    RUNTIME_CONFIGS,
    SINK_CONFIGS,
    TERM_KEYS,
    EnvCommon,
    EnvConfig,
    EvalConfig,
    FactoryEnvConfig,
    LossTermConfig,
    ModelConfig,
    OptimConfig,
    RuntimeConfig,
    TargetConfig,
    TrainConfig,
)
from a3c_exp.config.targets import TARGET_KEY, as_section, is_target_section, split_target


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


USER_GROUPS = (
    "env",
    "model",
    "optim",
    "loss",
    "intrinsic",
    "aux",
    "logger",
    "runtime",
    "experiment",
    "hydra/sweeper",
    "hydra/launcher",
)
"""The config groups ``--help`` lists: what a user chooses (the ``schema/`` groups and the
``tuned/`` files are chosen for them)."""
OUR_HYDRA_OPTIONS = {
    "hydra/sweeper": ("basic", "a3c_optuna", "a3c_pbt"),
    "hydra/launcher": ("basic", "parallel_local", "slurm", "ray"),
}


def _help_groups() -> str:
    """The options of each group a user chooses, as ``--help`` lists them (a ``--config-dir``
    of theirs included)."""
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    lines = []
    for group in USER_GROUPS:
        options = loader.get_group_options(group)
        if group in OUR_HYDRA_OPTIONS:
            options = [o for o in options if o in OUR_HYDRA_OPTIONS[group]]
        lines.append(f"  {group}: {', '.join(options) or '(none yet)'}")
    return "\n".join(lines)


def _help_names(section: Any) -> str:
    """A section's entries by name (``logger``: ``wandb, tensorboard``; empty: ``none``)."""
    names = list(section) if isinstance(section, Mapping) else []
    return ", ".join(str(n) for n in names) or "none"


def _help_target(section: Any) -> str:
    """What a section names with ``_target_`` (its last dotted part), or ``none``."""
    if isinstance(section, Mapping) and TARGET_KEY in section:
        return str(section[TARGET_KEY]).rsplit(".", 1)[-1]
    return "none"


HELP_RESOLVERS: dict[str, Callable[..., str]] = {
    "help_groups": _help_groups,
    "help_names": _help_names,
    "help_target": _help_target,
}
"""Resolvers the ``--help`` template of conf/train.yaml uses."""


def register_configs(*, cpu_count: Callable[[], int]) -> None:
    """Register the schema and the ``cpu_count`` resolver (call once before Hydra composes).

    ``cpu_count`` counts the CPUs a run may use (``a3c_exp.runtime.cpus.available_cpus``): the
    config asks the runtime rather than importing it.
    """
    if not OmegaConf.has_resolver("cpu_count"):
        OmegaConf.register_new_resolver("cpu_count", cpu_count)
    for name, resolver in HELP_RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver, use_cache=False)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=composition_schema(TrainConfig))
    # the schema of each kind of runtime, env, network and optimizer (schema/<group>/<kind>):
    # every file of conf/<group>/ starts from its kind's, so each field of that section can be
    # overridden and a key of another kind (runtime=local runtime.address=auto,
    # optim=shared_rmsprop optim.betas=...) is refused while composing
    registries = {
        "runtime": RUNTIME_CONFIGS,
        "env": ENV_CONFIGS,
        "model": MODEL_CONFIGS,
        "optim": OPTIM_CONFIGS,
        "logger": SINK_CONFIGS,
    }
    for group, registry in registries.items():
        for name, cls in registry.items():
            cs.store(group=f"schema/{group}", name=name, node=composition_schema(cls))


CALL_KEYS = frozenset({TARGET_KEY, "_partial_", "_args_", "_recursive_", "_convert_"})
"""Keys that make Hydra's ``instantiate`` call something. Only ``_target_`` is accepted, and only
where a section names what it builds (``TARGET_SECTIONS``); the others never."""

TARGET_SECTIONS = ("model", "env", "intrinsic", "aux.*", "logger.*")
"""Where a config may name a class or function with ``_target_`` (``*``: any entry)."""


def _target_positions(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The sections of a whole config that may carry ``_target_``, with their paths."""
    found = []
    for pattern in TARGET_SECTIONS:
        head, _, tail = pattern.partition(".")
        section = data.get(head)
        if not tail:
            if isinstance(section, Mapping):
                found.append((head, section))
        elif isinstance(section, Mapping):
            found += [(f"{head}.{k}", v) for k, v in section.items() if isinstance(v, Mapping)]
    return found


def refuse_call_keys(data: Any, path: str = "", allow_targets: bool = True) -> None:
    """Raise ConfigError naming the first key in ``data`` that would call code where a config
    may not: ``_partial_`` and the like anywhere, ``_target_`` outside ``TARGET_SECTIONS`` (or
    anywhere with ``allow_targets=False``)."""
    allowed = (
        {id(section) for _, section in _target_positions(data)}
        if allow_targets and not path and isinstance(data, Mapping)
        else set()
    )
    _refuse(data, path, allowed)


def _refuse(data: Any, path: str, allowed: set[int]) -> None:
    if isinstance(data, Mapping):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if key in CALL_KEYS and not (key == TARGET_KEY and id(data) in allowed):
                raise ConfigError(
                    f"{where}: names code to call where a config may not; _target_ names a "
                    f"class of your own only in the sections {', '.join(TARGET_SECTIONS)}"
                )
            _refuse(value, where, allowed)
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            _refuse(value, f"{path}[{index}]", allowed)


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
        check(value.is_integer(), key, value, "must be a whole number (an integer)")
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


def _parse_choice(registry: dict[str, type], data: Any, group: str, key: str = "name") -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{group}={data!r}: must be a {group} section with a {key}")
    name = data.get(key)
    if name not in registry:
        raise ConfigError(f"{group}.{key}={name!r}: allowed: {', '.join(registry)}")
    return parse_section(registry[name], data, group)


def parse_model(data: Any) -> ModelConfig:
    """A ``model`` section as its registered dataclass (chosen by ``name``), or as a
    ``TargetConfig`` when it names a network class of your own with ``_target_``."""
    if is_target_section(data):
        target, _, kwargs = split_target(data, "model")
        return TargetConfig(target, kwargs)
    return _parse_choice(MODEL_CONFIGS, data, "model")


def parse_optim(data: Any) -> OptimConfig:
    """An ``optim`` section as its registered dataclass (chosen by ``name``)."""
    return _parse_choice(OPTIM_CONFIGS, data, "optim")


ENV_COMMON_KEYS = tuple(f.name for f in dataclasses.fields(EnvCommon))
"""The keys of every env section; in a ``_target_`` env they are the run's, not the factory's."""


def parse_env(data: Any) -> EnvConfig:
    """An ``env`` section as its registered dataclass (chosen by ``kind``); one with
    ``_target_`` is a ``FactoryEnvConfig`` (the common keys the run's, the rest the factory's)."""
    if is_target_section(data):
        target, common, kwargs = split_target(data, "env", ENV_COMMON_KEYS)
        common.setdefault("name", target.rsplit(".", 1)[-1].lower())  # a label for run names
        if common.setdefault("kind", "factory") != "factory":
            raise ConfigError(
                f"env.kind={common['kind']!r}: an env with _target_ is of kind factory"
            )
        return parse_section(
            FactoryEnvConfig, {**common, "target": target, "kwargs": kwargs}, "env"
        )
    return _parse_choice(ENV_CONFIGS, data, "env", key="kind")


def parse_term(data: Any, key: str) -> LossTermConfig | None:
    """A loss-term section (``intrinsic``, ``aux.<name>``) as ``LossTermConfig``; None or an
    empty section is no term."""
    if data is None or (isinstance(data, Mapping) and not data):
        return None
    if not is_target_section(data):
        raise ConfigError(
            f"{key}={data!r}: a loss term names its module with _target_ (e.g. intrinsic=icm)"
        )
    target, own, kwargs = split_target(data, key, TERM_KEYS)
    return parse_section(LossTermConfig, {**own, "target": target, "kwargs": kwargs}, key)


def parse_aux(data: Any) -> dict[str, LossTermConfig]:
    """The ``aux`` section: auxiliary loss terms by name (entries set to null are left out)."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"aux={data!r}: must map names to loss-term sections (aux=[name,...])")
    terms = {str(name): parse_term(section, f"aux.{name}") for name, section in data.items()}
    return {name: term for name, term in terms.items() if term is not None}


def parse_logger(data: Any) -> dict[str, Any]:
    """The ``logger`` section: metric sinks by name, each typed by ``SINK_CONFIGS`` or, for a
    sink of your own, a ``TargetConfig``; an entry set to null is left out."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"logger={data!r}: must map sink names to their sections")
    sinks: dict[str, Any] = {}
    for name, section in data.items():
        key = f"logger.{name}"
        if section is None:
            continue
        if is_target_section(section):
            target, _, kwargs = split_target(section, key)
            sinks[str(name)] = TargetConfig(target, kwargs)
        elif name in SINK_CONFIGS:
            sinks[str(name)] = parse_section(SINK_CONFIGS[name], section, key)
        else:
            raise ConfigError(
                f"{key}: not a built-in sink ({', '.join(SINK_CONFIGS)}); a sink of your own "
                "names its class with _target_"
            )
    return sinks


def parse_runtime(data: Any) -> RuntimeConfig:
    """A ``runtime`` section as its registered dataclass (chosen by ``kind``)."""
    return _parse_choice(RUNTIME_CONFIGS, data, "runtime", key="kind")


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
    return replace(
        top,
        env=parse_env(data.get("env")),
        model=parse_model(data.get("model")),
        optim=parse_optim(data.get("optim")),
        runtime=parse_runtime(data.get("runtime")),
        logger=parse_logger(data.get("logger")),
        intrinsic=parse_term(data.get("intrinsic"), "intrinsic"),
        aux=parse_aux(data.get("aux")),
    )


def load_config(cfg: DictConfig | Mapping[str, Any]) -> TrainConfig:
    """``typed_config`` then the config's own checks (``check_config``); the entry points then
    let each part check its section (``a3c_exp.runtime.checks.validate``)."""
    return check_config(typed_config(cfg))


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
        check(value >= 1, key, value, "must be an integer >= 1")
    return eval_cfg


def as_plain_data(cfg: Any) -> Any:
    """A typed config as plain data (dicts, lists, scalars): for checkpoints, W&B and logs.

    A section that names its class with ``_target_`` is written back in Hydra's form (as you
    wrote it), so a stored config reads back as the same typed config."""
    if isinstance(cfg, FactoryEnvConfig):
        common = {name: as_plain_data(getattr(cfg, name)) for name in ENV_COMMON_KEYS}
        return as_section(cfg.target, as_plain_data(cfg.kwargs), **common)
    if isinstance(cfg, LossTermConfig):
        return as_section(cfg.target, as_plain_data(cfg.kwargs), weight=cfg.weight)
    if isinstance(cfg, TargetConfig):
        return as_section(cfg.target, as_plain_data(cfg.kwargs))
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: as_plain_data(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {k: as_plain_data(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [as_plain_data(v) for v in cfg]
    return cfg
