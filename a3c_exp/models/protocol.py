"""The actor-critic protocol: what a network must do to be trained here, ours or yours.

A network is a ``torch.nn.Module`` built as ``Net(obs_shape, n_actions, **keys)`` (``keys``: the
other keys of its ``model`` section) that offers:

* ``initial_state(batch_size) -> state``: the recurrent state of ``batch_size`` envs before
  their first step; a tuple of tensors whose dimension 1 is the env (``(h, c)`` of shape
  ``(1, B, H)`` for an LSTM, as ``nn.LSTM`` holds it), or ``()`` for a feed-forward network;
* ``forward(obs, state) -> (logits, value, state)``: one step of B envs: ``obs (B, *obs_shape)``
  (uint8 frames or float vectors, as the env gives them) to action logits ``(B, n_actions)``,
  values ``(B,)`` and the next state;
* optionally ``forward_sequence(obs, state, dones) -> (logits, values)``: a whole rollout at
  once, ``obs (T, B, ...)`` to ``(T, B, n_actions)`` and ``(T, B)``, the state of env ``b``
  zeroed after each step ``t`` with ``dones[t, b]``. Without it, ``run_sequence`` steps
  ``forward`` through the rollout, which gives the same numbers more slowly;
* optionally ``encoder``: the module that turns observations into features. Loss terms that
  read the network's features (``uses_features``) and ``loss.anchor_on: features`` need it.

The built-in networks (``ActorCritic`` and its subclasses) follow it; subclassing
``ActorCritic`` with an encoder of your own gives the LSTM core, the heads, the batched
``forward_sequence`` and the tutorial's initialisation for free.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from a3c_exp.typing import RecurrentState


@runtime_checkable
class ActorCriticNet(Protocol):
    """A network the workers can act and learn with (see the module's docstring)."""

    def initial_state(self, batch_size: int = 1) -> RecurrentState:
        """The state of ``batch_size`` envs before their first step (``()`` if none)."""
        ...

    def forward(
        self, obs: torch.Tensor, state: RecurrentState
    ) -> tuple[torch.Tensor, torch.Tensor, RecurrentState]:
        """One step of B envs: logits ``(B, A)``, values ``(B,)``, next state."""
        ...


def run_sequence(
    net: ActorCriticNet, obs: torch.Tensor, state: RecurrentState, dones: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A rollout ``obs (T, B, ...)`` through ``net``: logits ``(T, B, A)`` and values ``(T, B)``.

    Uses the network's own ``forward_sequence`` when it has one; otherwise steps ``forward``
    along the rollout, zeroing an env's state after the step that ended its episode.
    """
    batched = getattr(net, "forward_sequence", None)
    if batched is not None:
        return batched(obs, state, dones)
    all_logits, all_values = [], []
    for t in range(obs.shape[0]):
        logits, values, state = net(obs[t], state)
        all_logits.append(logits)
        all_values.append(values)
        keep = (~dones[t]).to(logits.dtype)
        state = tuple(s * keep.view(1, -1, *([1] * (s.dim() - 2))) for s in state)
    return torch.stack(all_logits), torch.stack(all_values)


def check_outputs(net: ActorCriticNet, obs_shape: tuple[int, ...], n_actions: int) -> None:
    """One step on a blank observation, to refuse a network whose outputs do not fit the env
    before any worker starts. Raises ValueError (one line) naming what is wrong."""
    name = type(net).__qualname__
    try:
        state = net.initial_state(2)
        with torch.no_grad():
            logits, values, next_state = net(torch.zeros(2, *obs_shape), state)
    except Exception as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(
            f"model: {name} failed one step on observations of shape {tuple(obs_shape)}: "
            f"{type(err).__name__}: {text}"
        ) from None
    if tuple(logits.shape) != (2, n_actions):
        raise ValueError(
            f"model: {name}.forward returned logits of shape {tuple(logits.shape)} for 2 envs; "
            f"expected (2, {n_actions}) (n_actions of the env)"
        )
    if tuple(values.shape) != (2,):
        raise ValueError(
            f"model: {name}.forward returned values of shape {tuple(values.shape)} for 2 envs; "
            "expected (2,)"
        )
    if not isinstance(next_state, tuple) or any(s.shape[1:2] != (2,) for s in next_state):
        raise ValueError(
            f"model: {name}.forward must return its state as a tuple of tensors with the envs "
            "on dimension 1 (as nn.LSTM's (h, c)), or ()"
        )
