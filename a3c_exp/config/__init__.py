"""The typed config of a run: the ground floor of the package (it imports nothing else of it).

``schema``: the frozen dataclasses; ``load``: Hydra's ConfigStore, parsing, ``load_config``;
``checks``: the config's own rules and ``ConfigError``. The names other modules use are
re-exported here (``from a3c_exp.config import TrainConfig, ConfigError, load_config``).
"""

from a3c_exp.config.checks import ConfigError, check, check_config, is_int
from a3c_exp.config.load import (
    CALL_KEYS,
    as_plain_data,
    composition_schema,
    load_config,
    load_eval_config,
    parse_model,
    parse_optim,
    parse_section,
    refuse_call_keys,
    register_configs,
    thawed_schema,
    typed_config,
    whole_numbers,
)
from a3c_exp.config.schema import (
    MODEL_CONFIGS,
    OBJECTIVES,
    OPTIM_CONFIGS,
    RUNTIME_KINDS,
    AdamConfig,
    ConvLSTMConfig,
    EnvConfig,
    EvalConfig,
    LoggerConfig,
    LossConfig,
    MLPConfig,
    ModelConfig,
    OptimConfig,
    RMSpropConfig,
    RuntimeConfig,
    TrainConfig,
)

__all__ = [
    "CALL_KEYS",
    "MODEL_CONFIGS",
    "OBJECTIVES",
    "OPTIM_CONFIGS",
    "RUNTIME_KINDS",
    "AdamConfig",
    "ConfigError",
    "ConvLSTMConfig",
    "EnvConfig",
    "EvalConfig",
    "LoggerConfig",
    "LossConfig",
    "MLPConfig",
    "ModelConfig",
    "OptimConfig",
    "RMSpropConfig",
    "RuntimeConfig",
    "TrainConfig",
    "as_plain_data",
    "check",
    "check_config",
    "composition_schema",
    "is_int",
    "load_config",
    "load_eval_config",
    "parse_model",
    "parse_optim",
    "parse_section",
    "refuse_call_keys",
    "register_configs",
    "thawed_schema",
    "typed_config",
    "whole_numbers",
]
