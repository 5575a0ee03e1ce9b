"""What a network asks of its input and its config, answered without importing torch.

The config is checked before anything heavy is imported; the networks themselves
(``a3c_exp.models.actor_critic``) apply the same rules when they are built.
"""

from __future__ import annotations

from collections.abc import Sequence

from a3c_exp.config import ConfigError, ConvLSTMConfig, ModelConfig, TargetConfig, check, is_int

OBS_NORMALIZATIONS = ("standardize", "scale")
"""``model.obs_normalization`` of the conv network: per-frame standardising, or /255."""

ACTIVATIONS = ("tanh", "relu", "elu")
"""``model.activation``: the nonlinearity after each hidden layer (both networks)."""


def conv_smallest_frame(kernel_sizes: Sequence[int], strides: Sequence[int]) -> int:
    """The smallest frame side the conv stack (no padding) still leaves one output pixel for."""
    side = 1
    for kernel, stride in zip(reversed(kernel_sizes), reversed(strides), strict=True):
        side = (side - 1) * stride + kernel
    return side


def smallest_frame(model: ModelConfig) -> int | None:
    """The smallest frame side ``model`` takes, or None when it reads no frames (model=mlp)."""
    if isinstance(model, ConvLSTMConfig):
        return conv_smallest_frame(model.kernel_sizes, model.strides)
    return None


def check_frame_size(kernel_sizes: Sequence[int], strides: Sequence[int], side: int) -> None:
    """Refuse frames of ``side`` pixels the conv stack cannot take (the one frame-size rule).

    Raises ConfigError naming ``env.frame_size``, the smallest side, and the stack.
    """
    smallest = conv_smallest_frame(kernel_sizes, strides)
    check(
        side >= smallest,
        "env.frame_size",
        side,
        f"must be >= {smallest}: the conv stack (model.kernel_sizes={list(kernel_sizes)}, "
        f"model.strides={list(strides)}) needs frames of at least {smallest}x{smallest}",
    )


def check_model(model: ModelConfig, frame_side: int | None = None) -> None:
    """Raise ConfigError (one line) for a bad ``model`` section, or for frames of
    ``frame_side`` pixels it cannot take (None: the env's frames are not known before it runs).

    A network of your own (``_target_``) is imported here, checked to be an ``nn.Module``
    subclass and its keys checked against its signature; its outputs are checked when the run
    builds it, before any worker starts."""
    if isinstance(model, TargetConfig):
        from a3c_exp.models.build import network_class

        network_class(model)
        return
    check(
        model.activation in ACTIVATIONS,
        "model.activation",
        model.activation,
        f"allowed: {', '.join(ACTIVATIONS)}",
    )
    if not isinstance(model, ConvLSTMConfig):
        return
    check(len(model.channels) >= 1, "model.channels", model.channels, "must list at least 1 conv")
    for key in ("channels", "kernel_sizes", "strides"):
        values = getattr(model, key)
        check(
            len(values) == len(model.channels) and all(is_int(v) and v >= 1 for v in values),
            f"model.{key}",
            values,
            f"must be {len(model.channels)} integers >= 1, one per conv (model.channels has "
            f"{len(model.channels)})",
        )
    check(
        model.obs_normalization in OBS_NORMALIZATIONS,
        "model.obs_normalization",
        model.obs_normalization,
        f"allowed: {', '.join(OBS_NORMALIZATIONS)}",
    )
    if frame_side is not None:
        check_frame_size(model.kernel_sizes, model.strides, frame_side)


__all__ = [
    "ACTIVATIONS",
    "OBS_NORMALIZATIONS",
    "ConfigError",
    "check_frame_size",
    "check_model",
    "conv_smallest_frame",
    "smallest_frame",
]
