"""What workers tell the run: typed, picklable messages, one definition of each field.

Workers send these through their own pipe; the run reads them and nothing else. Every metric
name derived from them is defined once in ``a3c_exp.reporting.stats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ready:
    """A worker built its envs and network and is about to train."""

    rank: int
    pid: int


@dataclass(frozen=True)
class Episode:
    """One finished episode of one env: return, length and mean value estimate."""

    reward: float
    length: int
    value: float


@dataclass(frozen=True)
class Update:
    """One rollout learned from (or skipped for a NaN/inf loss or gradient)."""

    rank: int
    steps: int  # env steps of the rollout, all of the worker's envs
    episodes: tuple[Episode, ...]
    value_loss: float  # per env step
    policy_loss: float  # per env step
    entropy: float  # per env step
    grad_norm: float  # before clipping
    var_norm: float  # L2 norm of the local weights
    skipped: bool  # true: the gradients were not applied
    # mean KL(old || new) of the policy on the worker's previous rollout, from the network it
    # acted with to the one it pulled for this update (NaN: not measured, optim.kl_target null)
    kl: float = float("nan")
    learning_rate: float = float("nan")  # the rate this update was stepped with (NaN: skipped)
    # per env step, the distance from the anchor (loss.anchor_on; NaN: loss.anchor_coef 0)
    anchor_drift: float = float("nan")
    timing: dict[str, float] = field(default_factory=dict)  # seconds per phase (TIMING_PHASES)
    # the loss terms' figures of this update, keyed for reporting (Intrinsic/..., Aux/...)
    term_metrics: dict[str, float] = field(default_factory=dict)
    videos: tuple[str, ...] = ()  # GIFs written since the last update
    notes: tuple[str, ...] = ()  # what the worker has to say once (videos stopped: why)


@dataclass(frozen=True)
class WorkerError:
    """A worker's training loop raised: the traceback, for the restart's log line."""

    rank: int
    traceback: str


Message = Ready | Update | WorkerError
