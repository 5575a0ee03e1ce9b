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
from dataclasses import asdict, replace
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
    EnvConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    RuntimeConfig,
    TrainConfig,
)


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


def register_configs(*, cpu_count: Callable[[], int]) -> None:
    """Register the schema and the ``cpu_count`` resolver (call once before Hydra composes).

    ``cpu_count`` counts the CPUs a run may use (``a3c_exp.runtime.cpus.available_cpus``): the
    config asks the runtime rather than importing it.
    """
    if not OmegaConf.has_resolver("cpu_count"):
        OmegaConf.register_new_resolver("cpu_count", cpu_count)
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
    }
    for group, registry in registries.items():
        for name, cls in registry.items():
            cs.store(group=f"schema/{group}", name=name, node=composition_schema(cls))


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
    """A ``model`` section as its registered dataclass (chosen by ``name``)."""
    return _parse_choice(MODEL_CONFIGS, data, "model")


def parse_optim(data: Any) -> OptimConfig:
    """An ``optim`` section as its registered dataclass (chosen by ``name``)."""
    return _parse_choice(OPTIM_CONFIGS, data, "optim")


def parse_env(data: Any) -> EnvConfig:
    """An ``env`` section as its registered dataclass (chosen by ``kind``)."""
    return _parse_choice(ENV_CONFIGS, data, "env", key="kind")


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


def as_plain_data(cfg: Any) -> dict[str, Any]:
    """A typed config as plain data (dicts, lists, scalars): for checkpoints, W&B and logs."""
    return asdict(cfg)
