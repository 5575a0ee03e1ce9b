"""Actor-critic networks with an optional LSTM core.

Every network offers two views of the same function:

* ``forward(obs, state)`` for acting: a batch of observations, one time step;
* ``forward_sequence(obs, state, dones)`` for learning: a whole rollout of a batch of envs in a
  single batched pass (the encoder over all frames at once, the LSTM over the sequence), with an
  env's recurrent state reset after every step whose ``dones`` flag is set. It gives the same
  outputs as calling ``forward`` step by step, at a fraction of the cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from a3c_exp.models.shapes import ACTIVATIONS, OBS_NORMALIZATIONS, check_frame_size
from a3c_exp.typing import RecurrentState


class ActorCritic(nn.Module):
    """Shared encoder, optional LSTM core, softmax policy head and scalar value head.

    With a ``critic_encoder`` the value has a trunk of its own (that encoder and, when the
    network has one, its own LSTM of the same size): no gradient of the value loss reaches the
    policy's layers, and a change of the policy's features cannot move the value. The
    recurrent state then holds both LSTMs' states side by side (policy first) in one ``(h, c)``
    pair, so every caller carries it as it carries the shared network's.
    """

    def __init__(
        self,
        encoder: nn.Module,
        feature_size: int,
        n_actions: int,
        lstm_size: int,
        critic_encoder: nn.Module | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.lstm_size = int(lstm_size)
        self.lstm = _lstm(feature_size, lstm_size)
        core_size = lstm_size if lstm_size > 0 else feature_size
        self.policy_head = nn.Linear(core_size, n_actions)
        self.value_head = nn.Linear(core_size, 1)
        self.critic_encoder = critic_encoder
        self.critic_lstm = _lstm(feature_size, lstm_size) if critic_encoder is not None else None
        # As in the tutorial: small policy weights (near-uniform first policy), unit-scale value.
        nn.init.orthogonal_(self.policy_head.weight, gain=0.01)
        nn.init.zeros_(self.policy_head.bias)
        nn.init.orthogonal_(self.value_head.weight, gain=1.0)
        nn.init.zeros_(self.value_head.bias)

    @property
    def is_recurrent(self) -> bool:
        """Whether the network carries a state from step to step."""
        return self.lstm is not None

    def _trunks(self) -> list[tuple[nn.Module, nn.LSTM | None]]:
        """(encoder, LSTM) of the policy, then of the value when it has its own."""
        trunks = [(self.encoder, self.lstm)]
        if self.critic_encoder is not None:
            trunks.append((self.critic_encoder, self.critic_lstm))
        return trunks

    def initial_state(self, batch_size: int = 1) -> RecurrentState:
        """Zero state for ``batch_size`` envs: ``(h, c)`` each ``(1, B, H x trunks)``, or ``()``."""
        if self.lstm is None:
            return ()
        zeros = torch.zeros(1, batch_size, self.lstm_size * len(self._trunks()))
        return (zeros, zeros.clone())

    def forward(
        self, obs: torch.Tensor, state: RecurrentState
    ) -> tuple[torch.Tensor, torch.Tensor, RecurrentState]:
        """One step for a batch: ``obs (B, ...)`` -> logits ``(B, A)``, value ``(B,)``, state."""
        cores, hs, cs = [], [], []
        for k, (encoder, lstm) in enumerate(self._trunks()):
            features = encoder(obs)
            if lstm is None:
                cores.append(features)
                continue
            part = slice(k * self.lstm_size, (k + 1) * self.lstm_size)
            # One step through the LSTM's own weights with the fused cell kernel: about 3x
            # cheaper than nn.LSTM on a length-1 sequence, which pays a per-call setup cost.
            h, c = torch.lstm_cell(
                features,
                (state[0][0][:, part], state[1][0][:, part]),
                lstm.weight_ih_l0,
                lstm.weight_hh_l0,
                lstm.bias_ih_l0,
                lstm.bias_hh_l0,
            )
            cores.append(h)
            hs.append(h)
            cs.append(c)
        logits, value = self.policy_head(cores[0]), self.value_head(cores[-1]).squeeze(-1)
        if not hs:
            return logits, value, ()
        return logits, value, (_side_by_side(hs).unsqueeze(0), _side_by_side(cs).unsqueeze(0))

    def forward_sequence(
        self, obs: torch.Tensor, state: RecurrentState, dones: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A rollout of B envs: ``obs (T, B, ...)`` -> logits ``(T, B, A)``, values ``(T, B)``.

        ``dones[t, b]`` marks the last step of an episode of env ``b``: its state is zeroed
        before step ``t + 1``. The encoder sees all T x B frames at once; the LSTM runs once over
        every episode fragment of the rollout side by side (see :func:`episode_fragments`).
        """
        steps, batch = dones.shape
        frames = obs.flatten(0, 1)
        fragments = episode_fragments(dones) if self.lstm is not None else None
        cores = []
        for k, (encoder, lstm) in enumerate(self._trunks()):
            features = encoder(frames)
            if lstm is None or fragments is None:
                cores.append(features.view(steps, batch, -1))
                continue
            part = slice(k * self.lstm_size, (k + 1) * self.lstm_size)
            # one extra all-zero feature row pads the fragments shorter than the longest
            padded = torch.cat([features, features.new_zeros(1, features.shape[1])])
            h0 = features.new_zeros(1, fragments.count, self.lstm_size)
            c0 = torch.zeros_like(h0)
            # fragments that open the rollout continue the carried state; the others start at 0
            h0 = h0.index_copy(1, fragments.carried, state[0][..., part])
            c0 = c0.index_copy(1, fragments.carried, state[1][..., part])
            out, _ = lstm(padded[fragments.gather], (h0, c0))
            cores.append(out.reshape(-1, self.lstm_size)[fragments.scatter].view(steps, batch, -1))
        return self.policy_head(cores[0]), self.value_head(cores[-1]).squeeze(-1)


def _lstm(feature_size: int, lstm_size: int) -> nn.LSTM | None:
    """The core LSTM (biases zeroed, as in the tutorial), or None for ``lstm_size`` 0."""
    if lstm_size <= 0:
        return None
    lstm = nn.LSTM(feature_size, lstm_size)
    for name, param in lstm.named_parameters():
        if "bias" in name:
            nn.init.zeros_(param)
    return lstm


def _side_by_side(parts: list[torch.Tensor]) -> torch.Tensor:
    """The trunks' states joined along the hidden axis (no copy for a single trunk)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


@dataclass(frozen=True)
class EpisodeFragments:
    """Index maps between a ``(T, B)`` rollout and its episode fragments laid side by side.

    A fragment is a run of steps of one env inside one episode. With every fragment as its own
    sequence (zero-padded to the longest, fragment ``k`` in column ``k``), a single ``nn.LSTM``
    call handles any number of episode ends: the padding comes after each fragment's last
    step, so it never reaches a real output. Splitting the rollout at every episode end
    instead costs one LSTM call per stretch, 6x slower once a skilled agent ends an episode
    every few steps.
    """

    count: int  # number of fragments S
    gather: torch.Tensor  # (L, S): flat index t * B + b of each fragment step; T * B = padding
    scatter: torch.Tensor  # (T * B,): flat index l * S + k of step (t, b) in the LSTM output
    carried: torch.Tensor  # (B,): fragment holding env b's first step (it gets the carried state)


def episode_fragments(dones: torch.Tensor) -> EpisodeFragments:
    """Cut each env's column of ``dones (T, B)`` after every episode end."""
    steps, batch = dones.shape
    flags = dones.tolist()
    fragments: list[tuple[int, int, int]] = []  # (env, first step, end step)
    carried = []
    for env in range(batch):
        carried.append(len(fragments))
        start = 0
        for t in range(steps):
            if flags[t][env] or t == steps - 1:
                fragments.append((env, start, t + 1))
                start = t + 1
    longest = max(end - start for _, start, end in fragments)
    gather = torch.full((longest, len(fragments)), steps * batch, dtype=torch.long)
    scatter = torch.empty(steps * batch, dtype=torch.long)
    for k, (env, start, end) in enumerate(fragments):
        positions = torch.arange(end - start)
        flat = (positions + start) * batch + env
        gather[: end - start, k] = flat
        scatter[flat] = positions * len(fragments) + k
    return EpisodeFragments(len(fragments), gather, scatter, torch.tensor(carried))


ACTIVATION: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}
"""The module of each ``model.activation`` (names: ``a3c_exp.models.shapes.ACTIVATIONS``)."""


def check_activation(activation: str) -> None:
    """Refuse an unknown ``model.activation`` with one line (ValueError, as the builders do)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"model.activation={activation!r}: allowed: {', '.join(ACTIVATIONS)}")


def _conv_output_size(obs_shape: Sequence[int], convs: nn.Sequential) -> int:
    with torch.no_grad():
        return int(math.prod(convs(torch.zeros(1, *obs_shape)).shape[1:]))


class ConvEncoder(nn.Module):
    """Conv stack + fully connected layer over uint8 frames.

    ``obs_normalization``: ``scale`` divides by 255 (the tutorial); ``standardize`` gives each
    frame zero mean and unit variance (``layer_norm`` with eps 1, so a blank frame stays finite;
    one fused pass, about 9x cheaper than mean and std computed separately). With ``scale`` a
    small object (the Doom monster, a few pixels) barely moves the activations of a freshly
    initialised net: on a probe task (which half of the frame holds an 8x8 dark square) the
    tutorial's net stayed at chance after 1500 Adam steps, and reached 100 % within 300 with
    ``standardize``.

    ``layer_norm``: the fc layer's outputs are normalised per frame (``nn.LayerNorm``) before
    the nonlinearity, so a step that shifts or scales all of them together changes nothing
    downstream: the LSTM's input keeps the scale LayerNorm's own gain and bias set.

    ``game_variables`` > 0: the last channel is not image but the env's game variables (its
    first ``game_variables`` pixels, see ``VizDoomEnv``); they are divided by 100 and appended
    to the fc features, so the output has ``fc_size + game_variables`` features.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        channels: Sequence[int],
        kernel_sizes: Sequence[int],
        strides: Sequence[int],
        fc_size: int,
        obs_normalization: str = "standardize",
        game_variables: int = 0,
        activation: str = "relu",
        layer_norm: bool = False,
    ):
        super().__init__()
        check_activation(activation)
        if obs_normalization not in OBS_NORMALIZATIONS:
            raise ValueError(
                f"model.obs_normalization={obs_normalization!r}: "
                f"allowed: {', '.join(OBS_NORMALIZATIONS)}"
            )
        self.obs_normalization = obs_normalization
        self.game_variables = int(game_variables)
        image_shape = [obs_shape[0] - (1 if self.game_variables else 0), *obs_shape[1:]]
        if image_shape[0] < 1:
            raise ValueError(
                f"model.game_variables={game_variables}: the observation {tuple(obs_shape)} "
                "has no image channel besides the game variables' channel"
            )
        check_frame_size(kernel_sizes, strides, min(image_shape[1:]))
        self.output_size = fc_size + self.game_variables
        layers: list[nn.Module] = []
        in_channels = image_shape[0]
        nonlinearity = ACTIVATION[activation]
        for out_channels, kernel, stride in zip(channels, kernel_sizes, strides, strict=True):
            layers += [nn.Conv2d(in_channels, out_channels, kernel, stride), nonlinearity()]
            in_channels = out_channels
        layers.append(nn.Flatten())
        self.convs = nn.Sequential(*layers)
        fc: list[nn.Module] = [nn.Linear(_conv_output_size(image_shape, self.convs), fc_size)]
        if layer_norm:
            fc.append(nn.LayerNorm(fc_size))
        self.fc = nn.Sequential(*fc, nonlinearity())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` uint8 or float frames -> ``(B, output_size)`` features."""
        frames = obs.float()
        if self.game_variables:
            variables = frames[:, -1].flatten(1)[:, : self.game_variables] * 0.01
            frames = frames[:, :-1]
        if self.obs_normalization == "standardize":
            frames = F.layer_norm(frames, frames.shape[1:], eps=1.0)
        else:
            frames = frames * (1.0 / 255.0)
        features = self.fc(self.convs(frames))
        if self.game_variables:
            features = torch.cat([features, variables], dim=1)
        return features


class ConvLSTMActorCritic(ActorCritic):
    """The tutorial's network: conv(16, 8x8, /4) -> conv(32, 4x4, /2) -> fc 256 -> LSTM 256.

    It is also the A3C paper's Atari network (Mnih et al. 2016: the same convs and fc 256; with
    the LSTM for "A3C LSTM", ``lstm_size: 0`` for "A3C FF"). ``separate_critic``: the value
    gets a second copy of the convs, fc and LSTM (see :class:`ActorCritic`), at about twice
    the network's cost per step.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        channels: Sequence[int] = (16, 32),
        kernel_sizes: Sequence[int] = (8, 4),
        strides: Sequence[int] = (4, 2),
        fc_size: int = 256,
        lstm_size: int = 256,
        obs_normalization: str = "standardize",
        game_variables: int = 0,
        activation: str = "relu",
        layer_norm: bool = False,
        separate_critic: bool = False,
    ):
        if len(obs_shape) != 3:
            raise ValueError(
                f"model=conv_lstm needs image observations (C, H, W), got {tuple(obs_shape)}; "
                "use model=mlp for vector observations"
            )

        def conv_encoder() -> ConvEncoder:
            return ConvEncoder(
                obs_shape,
                channels,
                kernel_sizes,
                strides,
                fc_size,
                obs_normalization,
                game_variables,
                activation,
                layer_norm,
            )

        encoder = conv_encoder()
        critic_encoder = conv_encoder() if separate_critic else None
        super().__init__(encoder, encoder.output_size, n_actions, lstm_size, critic_encoder)


class MLPActorCritic(ActorCritic):
    """Fully connected encoder for vector observations, LSTM optional (``lstm_size: 0`` = none)."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        n_actions: int,
        hidden_sizes: Sequence[int] = (64, 64),
        lstm_size: int = 0,
        activation: str = "tanh",
    ):
        check_activation(activation)
        layers: list[nn.Module] = [nn.Flatten()]
        size = math.prod(obs_shape)
        for hidden in hidden_sizes:
            layers += [nn.Linear(size, hidden), ACTIVATION[activation]()]
            size = hidden
        super().__init__(nn.Sequential(*layers), size, n_actions, lstm_size)
