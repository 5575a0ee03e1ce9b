"""Shared-statistics optimizers, as in the A3C paper.

They are torch's own Adam and RMSprop with every state tensor created up front and moved to
shared memory, so the moments (and Adam's step count) are common to all worker processes. Torch
updates these tensors in place (fused and foreach kernels alike), which is what makes sharing
them work: the optimizer object is passed to each spawned worker and all of them step the same
storage. The launcher may serialise the step itself (``lock_optimizer_step``); gradients are
always computed without locks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


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
    """Copy a saved optimizer state into the existing shared tensors (keeps them shared).

    ``Optimizer.load_state_dict`` would replace the shared tensors by private copies.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    saved_state = state_dict["state"]
    if len(state_dict["param_groups"]) != len(optimizer.param_groups):
        raise ValueError("optimizer state: number of parameter groups differs from the model's")
    for group, saved_group in zip(optimizer.param_groups, state_dict["param_groups"], strict=True):
        for key, value in saved_group.items():
            if key != "params":
                group[key] = value
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


class SharedAdam(torch.optim.Adam):
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


class SharedRMSprop(torch.optim.RMSprop):
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
