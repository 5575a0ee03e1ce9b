"""Shared-statistics optimizers, as in the A3C paper.

They are torch's own Adam and RMSprop with every state tensor created up front and moved to
shared memory, so the moments (and Adam's step count) are common to all worker processes. Torch
updates these tensors in place (fused and foreach kernels alike), which is what makes sharing
them work: the optimizer object is passed to each spawned worker and all of them step the same
storage. The local runtime may serialise the step itself (``runtime.lock_optimizer_step``);
gradients are always computed without locks.

With ``optim.kl_target`` set, the learning rate follows the policy's measured change per
update (``adapt_learning_rate``): a shared scale on the configured rate, kept in each
parameter group (``lr_scale``, a shared tensor) so every worker steps with the same rate. With
``optim.anneal_steps`` set, the rate also falls linearly to ``optim.anneal_to`` of itself (zero
by default) over that many env steps learned from (``steps_learned``, a shared count in each
group), and stays there. Both live in the parameter groups, so checkpoints keep them and a
resumed run continues them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from a3c_exp.config import OptimConfig


KL_LR_FACTOR = 1.5
"""How much one update's measured policy change moves the learning-rate scale (up or down)."""
MIN_LR_SCALE = 0.01
"""The lowest scale of the configured learning rate the KL control may set."""


def enable_kl_control(optimizer: torch.optim.Optimizer, kl_target: float) -> None:
    """Let ``adapt_learning_rate`` scale each group's configured rate, the scale shared."""
    for group in optimizer.param_groups:
        group["initial_lr"] = float(group["lr"])
        group["kl_target"] = float(kl_target)
        group["lr_scale"] = torch.ones(()).share_memory_()


def enable_anneal(optimizer: torch.optim.Optimizer, anneal_steps: int, anneal_to: float) -> None:
    """Let ``adapt_learning_rate`` lower each group's rate linearly to ``anneal_to`` of itself
    over ``anneal_steps`` env steps learned from, the count shared."""
    for group in optimizer.param_groups:
        group["initial_lr"] = float(group["lr"])
        group["anneal_steps"] = int(anneal_steps)
        group["anneal_to"] = float(anneal_to)
        group["steps_learned"] = torch.zeros((), dtype=torch.int64).share_memory_()


def anneal_factor(steps_learned: int, anneal_steps: int, anneal_to: float) -> float:
    """The share of the configured rate left after ``steps_learned`` of ``anneal_steps``: from 1
    down to ``anneal_to`` in a straight line, then ``anneal_to``."""
    done = min(1.0, steps_learned / anneal_steps)
    return 1.0 - (1.0 - anneal_to) * done


def adapt_learning_rate(optimizer: torch.optim.Optimizer, kl: float, steps: int = 0) -> float:
    """Move the shared learning-rate scale by one measured policy change and count the
    update's env ``steps`` into the anneal; the rate in force for its step.

    ``kl`` is the mean KL(old || new) of the policy over the states of a worker's previous
    rollout, between the network it acted with and the one it pulled next (NaN: not measured).
    Above twice ``kl_target`` the scale falls by ``KL_LR_FACTOR`` (not below
    ``MIN_LR_SCALE``); below half of it, it rises by as much, up to 1: the configured rate is
    the largest step, and one update cannot move the policy much further than the target
    before the next ones slow down. With an anneal, the rate is then multiplied by the share
    ``anneal_factor`` leaves after the steps learned from, this update's steps counted.
    Every caller takes the shared scale and count into its own groups' ``lr``, so a process
    steps with the rate the others set. Without either the rate stays as configured.
    """
    for group in optimizer.param_groups:
        if "initial_lr" not in group:
            continue
        rate = group["initial_lr"]
        scale = group.get("lr_scale")
        if scale is not None:
            target = group["kl_target"]
            if math.isfinite(kl) and kl > 2 * target:
                scale.fill_(max(float(scale) / KL_LR_FACTOR, MIN_LR_SCALE))
            elif math.isfinite(kl) and kl < target / 2:
                scale.fill_(min(float(scale) * KL_LR_FACTOR, 1.0))
            rate *= float(scale)
        learned = group.get("steps_learned")
        if learned is not None:
            learned += steps
            rate *= anneal_factor(int(learned), group["anneal_steps"], group["anneal_to"])
        group["lr"] = rate
    return float(optimizer.param_groups[0]["lr"])


def share_optimizer_state(optimizer: torch.optim.Optimizer, state_init: dict[str, Any]) -> None:
    """Create every parameter's state from ``state_init`` (name -> 'zeros' or a float), shared."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state[param]
            for name, init in state_init.items():
                if name in state:
                    continue
                if init == "zeros":
                    state[name] = torch.zeros_like(param, memory_format=torch.preserve_format)
                else:
                    state[name] = torch.tensor(float(init))
                state[name].share_memory_()


def load_shared_state(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """Copy a saved optimizer's statistics (moments, step counts) into the shared tensors.

    Only the state tensors are restored: the hyperparameters of the parameter groups (lr, betas,
    eps, ...) stay those of the optimizer as built from the config in force, so a resumed run
    trains with what its command says. ``Optimizer.load_state_dict`` would also replace the
    shared tensors by private copies.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    saved_state = state_dict["state"]
    if len(state_dict["param_groups"]) != len(optimizer.param_groups):
        raise ValueError("optimizer state: number of parameter groups differs from the model's")
    for index, param in enumerate(params):
        saved = saved_state.get(index, {})
        for name, tensor in optimizer.state[param].items():
            if name not in saved:
                continue
            if saved[name].shape != tensor.shape:
                raise ValueError(
                    f"optimizer state: {name} of parameter {index} has shape "
                    f"{tuple(saved[name].shape)}, the model needs {tuple(tensor.shape)}"
                )
            tensor.copy_(saved[name])
    for group, saved_group in zip(optimizer.param_groups, state_dict["param_groups"], strict=True):
        for shared in ("lr_scale", "steps_learned"):
            if shared in group and shared in saved_group:
                group[shared].fill_(saved_group[shared].item())


def clone_state_dict(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer.state_dict()`` with every tensor copied (the live one aliases shared memory)."""
    state = optimizer.state_dict()
    return {
        "state": {
            index: {
                name: value.clone() if torch.is_tensor(value) else value
                for name, value in param_state.items()
            }
            for index, param_state in state["state"].items()
        },
        "param_groups": [
            {
                name: value.clone() if torch.is_tensor(value) else value
                for name, value in group.items()
            }
            for group in state["param_groups"]
        ],
    }


class _EagerOnly:
    """Torch's optimizer methods without their ``torch.compile`` guards.

    Torch wraps ``Optimizer.__init__``'s ``add_param_group``, ``state_dict``, ``zero_grad`` and
    every ``step`` so that their first call imports ``torch._dynamo`` (sympy, fsdp, ...: ~2.5
    CPU-seconds), only to keep the compiler out of them. This package never compiles an
    optimizer, and it builds one in every run's main process and steps it in every worker: the
    import cost a short sweep trial ~5 of its ~18 CPU-seconds of start-up. These overrides call
    the very same torch methods, unwrapped (``inspect.unwrap``), in eager mode with gradients
    off as the ``step`` wrapper would; ``tests/test_shared_optim.py`` holds them to torch's
    results and to not importing the compiler.
    """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _eager(torch.optim.Optimizer.add_param_group)(self, param_group)

    def state_dict(self) -> dict[str, Any]:
        return _eager(torch.optim.Optimizer.state_dict)(self)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _eager(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        base = next(c for c in type(self).__mro__ if c.__module__.startswith("torch.optim."))
        with torch.no_grad():
            return _eager(base.step)(self, closure)


def _eager(method: Callable[..., Any]) -> Callable[..., Any]:
    """The function under torch's decorators (each keeps it as ``__wrapped__``)."""
    return inspect.unwrap(method)


class SharedAdam(_EagerOnly, torch.optim.Adam):
    """Adam with moments and step count in shared memory (one set for all workers)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        # fused=True: one kernel per parameter, 5x faster than the per-tensor loop on CPU, and
        # like it updates every state tensor in place (which is what keeps them shared).
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            fused=True,
        )
        init: dict[str, Any] = {"step": 0.0, "exp_avg": "zeros", "exp_avg_sq": "zeros"}
        if amsgrad:
            init["max_exp_avg_sq"] = "zeros"
        share_optimizer_state(self, init)


class SharedRMSprop(_EagerOnly, torch.optim.RMSprop):
    """RMSProp with shared squared-gradient statistics (the A3C paper's best variant)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 7e-4,
        alpha: float = 0.99,
        eps: float = 0.1,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            foreach=True,  # in place, like the per-tensor loop, and faster
        )
        init: dict[str, Any] = {"step": 0.0, "square_avg": "zeros"}
        if momentum > 0:
            init["momentum_buffer"] = "zeros"
        if centered:
            init["grad_avg"] = "zeros"
        share_optimizer_state(self, init)


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "shared_adam": SharedAdam,
    "shared_rmsprop": SharedRMSprop,
}
"""The optimizers ``optim.name`` may choose (their typed configs: ``a3c_exp.config``)."""


def build_optimizer(
    optim_cfg: OptimConfig, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """The registered shared optimizer ``optim_cfg.name`` over ``params``, state in shared memory.

    Only this registry's classes are built: a config cannot make this call anything else.
    ``kl_target``, ``anneal_steps`` and ``anneal_to`` are not the optimizer's own: they turn on
    ``adapt_learning_rate``'s control and anneal.
    """
    if optim_cfg.name not in OPTIMIZERS:
        raise ValueError(f"optim.name={optim_cfg.name!r}: allowed: {', '.join(OPTIMIZERS)}")
    arguments = {
        f.name: getattr(optim_cfg, f.name)
        for f in fields(optim_cfg)
        if f.name not in ("name", "kl_target", "anneal_steps", "anneal_to")
    }
    optimizer = OPTIMIZERS[optim_cfg.name](params, **arguments)
    if optim_cfg.kl_target is not None:
        enable_kl_control(optimizer, optim_cfg.kl_target)
    if optim_cfg.anneal_steps is not None:
        enable_anneal(optimizer, optim_cfg.anneal_steps, optim_cfg.anneal_to)
    return optimizer


def optimizer_name(optimizer: torch.optim.Optimizer) -> str:
    """The registry name of an optimizer built by ``build_optimizer``."""
    for name, cls in OPTIMIZERS.items():
        if type(optimizer) is cls:
            return name
    raise ValueError(f"{type(optimizer).__name__} is not a registered shared optimizer")
