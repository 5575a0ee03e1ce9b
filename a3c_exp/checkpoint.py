"""Checkpoint files: consistent snapshots, atomic writes, rotation, and safe loading.

A checkpoint is a Lightning-format dict (``state_dict``, ``hyper_parameters``,
``pytorch-lightning_version``, ``optimizer_states``) plus an ``a3c`` section with the run's
counters, so ``A3CModule.load_from_checkpoint(path)`` works and ``resume=`` continues the run.

Trust: loading reads tensors and plain data only (``weights_only=True``) and then checks the
stored config as data: call keys are refused except ``_target_`` where a section names what it
builds (``a3c_exp.config.TARGET_SECTIONS``), and nothing a checkpoint names is imported here.
Building its module (``A3CModule``) imports a named class only from the trusted packages and
only after checking its kind, so a checkpoint cannot make this package run what it names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from a3c_exp.config import CALL_KEYS, ENV_CONFIGS, ConfigError, refuse_call_keys
from a3c_exp.files import atomic_write_bytes
from a3c_exp.optim.shared import clone_state_dict, optimizer_name

if TYPE_CHECKING:
    from a3c_exp.config import TrainConfig

log = logging.getLogger("a3c_exp")

CHECKPOINT_FORMAT = 3
"""3: a network, env or loss term of your own named by ``_target_``, imported on reading only
from trusted packages; 2: model and optimizer chosen by name (1 named classes by import path,
read as legacy)."""

LEGACY_NAMES = {
    "a3c_exp.models.ConvLSTMActorCritic": "conv_lstm",
    "a3c_exp.models.MLPActorCritic": "mlp",
    "a3c_exp.optim.SharedAdam": "shared_adam",
    "a3c_exp.optim.SharedRMSprop": "shared_rmsprop",
}
"""Import paths that format-1 checkpoints stored, and the registry names they meant."""


def upgrade_legacy_sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a format-1 ``model``/``optim`` section's own class path to its registry name, and
    keep of a stored ``env`` section only the keys of its kind (before env sections by kind,
    every checkpoint stored all kinds' keys; those of other kinds did nothing).

    Pure data: a path is only looked up in ``LEGACY_NAMES``, never imported; any other call key
    is left in place for ``refuse_call_keys`` to refuse.
    """
    upgraded = dict(data)
    env = upgraded.get("env")
    if isinstance(env, Mapping) and env.get("kind") in ENV_CONFIGS:
        keys = {f.name for f in dataclasses.fields(ENV_CONFIGS[env["kind"]])} | set(CALL_KEYS)
        upgraded["env"] = {k: v for k, v in env.items() if k in keys}
    for group in ("model", "optim"):
        section = upgraded.get(group)
        if isinstance(section, Mapping) and section.get("_target_") in LEGACY_NAMES:
            section = dict(section)
            section["name"] = LEGACY_NAMES[section.pop("_target_")]
            if section.get("_partial_") is True:
                section.pop("_partial_")
            upgraded[group] = section
    return upgraded


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the file and the problem."""


def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` so that a crash or a full disk leaves either the old file
    or the new one.

    The checkpoint is serialised in memory first and written as bytes (``a3c_exp.files``): a
    failed write then raises ``OSError`` naming the checkpoint, instead of the serialiser's own
    error from inside a half-written archive.
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getbuffer())


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint without running pickled code (``weights_only=True``).

    Raises CheckpointError with one line naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "Weights only load failed" in reason or "Unsupported global" in str(err):
            reason = "it holds pickled objects other than tensors and plain data (refused)"
        raise CheckpointError(f"checkpoint {path}: cannot be read: {reason}") from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "a3c" not in payload:
        raise CheckpointError(f"checkpoint {path}: not an a3c-exp checkpoint (no state_dict/a3c)")
    _refuse_calls(payload, path)
    return payload


def _refuse_calls(payload: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose stored config names code to call, whatever reads it next."""
    hparams = payload.get("hyper_parameters") or {}
    try:
        refuse_call_keys({k: v for k, v in hparams.items() if k != "cfg"})
        if isinstance(hparams.get("cfg"), dict):
            refuse_call_keys(upgrade_legacy_sections(hparams["cfg"]))
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {path}: refused: {err}") from None


@dataclass(frozen=True)
class Counts:
    """What the global side counted, each with the update it belongs to.

    ``applied`` is the optimizer's own step count (resumed statistics included); the others
    count from the pool's start: updates skipped for a NaN/inf loss or gradient, and the env
    steps and finished episodes of every update applied or skipped. A worker that dies after
    its update was applied cannot lose these, as it could lose the message it sends after.
    """

    applied: int = 0
    skipped: int = 0
    steps: int = 0
    episodes: int = 0


COUNT_FIELDS = ("applied", "skipped", "steps", "episodes")
"""The order of ``Counts``' fields in a shared counter tensor."""


def counts_of(tensor: torch.Tensor) -> Counts:
    """The ``Counts`` a shared int64 tensor of ``len(COUNT_FIELDS)`` holds."""
    return Counts(*(int(v) for v in tensor.tolist()))


@dataclass(frozen=True)
class Snapshot:
    """Weights, optimizer statistics and the counts copied at one instant."""

    weights: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    optimizer: str  # registry name of the optimizer
    counts: Counts

    @property
    def applied_updates(self) -> int:
        """Optimizer steps the weights and statistics hold."""
        return self.counts.applied


def take_snapshot(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lock: Any | None,
    counts: torch.Tensor,
) -> Snapshot:
    """Copy weights, optimizer state and the counts together, under the step lock.

    Workers step the shared optimizer and count under the same lock, so no step lands between
    the copies: the moments, Adam's step count, the weights and the counts all belong to the
    same update. A worker SIGKILLed inside the step (the one signal it cannot hold back) may
    leave it half-applied; ``repair_half_applied_step`` finds and closes that here.
    """
    with lock if lock is not None else contextlib.nullcontext():
        repair_half_applied_step(optimizer, counts)
        weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
        state = clone_state_dict(optimizer)
        taken = counts_of(counts)
    return Snapshot(weights, state, optimizer_name(optimizer), taken)


def repair_half_applied_step(optimizer: torch.optim.Optimizer, counts: torch.Tensor) -> bool:
    """Make a step that reached only some parameters (its worker was killed inside it) whole.

    Every parameter's ``step`` statistic equals the applied-update count after a whole step.
    After a half-applied one, some parameters were stepped and the count was not: the step is
    then counted as applied, and the parameters it did not reach get their ``step`` raised to
    match (they miss that one update, as if their gradient had been zero). Logged as an error,
    because a gradient was partly lost. Returns whether anything was repaired.
    """
    steps = [state["step"] for state in optimizer.state.values() if "step" in state]
    if not steps:
        return False
    values = {float(step) for step in steps}
    applied = int(counts[COUNT_FIELDS.index("applied")])
    top = max(values)
    if values == {float(applied)}:
        return False
    log.error(
        "a half-applied optimizer step (a worker killed inside it): per-parameter step "
        "counts %s, updates counted %d; counted as applied, the parameters it missed skip it",
        sorted(values),
        applied,
    )
    for step in steps:
        step.fill_(top)
    counts[COUNT_FIELDS.index("applied")] = int(top)
    return True


def checkpoint_payload(
    hparams: Mapping[str, Any], snapshot: Snapshot, counters: dict[str, Any]
) -> dict[str, Any]:
    """A Lightning-format checkpoint dict of a snapshot and the run's counters (``hparams``:
    the module's hyperparameters, which ``A3CModule.load_from_checkpoint`` is rebuilt from).

    Lightning's version is read from the installed package's metadata: importing Lightning
    for one string would cost the run seconds."""
    from importlib.metadata import version

    return {
        "state_dict": snapshot.weights,
        "hyper_parameters": dict(hparams),
        "pytorch-lightning_version": version("pytorch-lightning"),
        "epoch": 0,
        "global_step": int(counters.get("global_step", 0)),
        "optimizer_states": [snapshot.optimizer_state],
        "a3c": {
            "format": CHECKPOINT_FORMAT,
            **counters,
            "optimizer": snapshot.optimizer,
            "updates": snapshot.counts.applied,
        },
    }


def _saved_optimizer_name(payload: dict[str, Any]) -> str | None:
    name = payload["a3c"].get("optimizer")
    if name is None:  # format 1: tell the kind from the statistics it holds
        states = (payload.get("optimizer_states") or [{}])[0].get("state", {})
        keys = {key for state in states.values() for key in state}
        name = "shared_adam" if "exp_avg" in keys else "shared_rmsprop" if keys else None
    return name


@dataclass(frozen=True)
class ResumeState:
    """What a run continues from, read once from its checkpoint: the state, never the config.

    The config in force decides every hyperparameter; the checkpoint gives the weights, the
    optimizer's statistics (``None``: start them afresh, ``resume_optimizer_state=false``)
    and the run's counters (``global_step``, episodes, last-100 rewards, W&B run id ...).
    """

    path: str
    weights: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    counters: dict[str, Any]

    @property
    def applied_updates(self) -> int:
        """Optimizer steps the restored statistics already hold (0 when started afresh)."""
        return int(self.counters.get("updates", 0)) if self.optimizer_state is not None else 0


def read_resume_state(cfg: TrainConfig) -> ResumeState:
    """Read ``cfg.resume``'s checkpoint for this config; ValueError in one line if it cannot be
    (a CheckpointError for the file itself)."""
    return resume_state(load_checkpoint(str(cfg.resume)), cfg, str(cfg.resume))


def resume_state(payload: dict[str, Any], cfg: TrainConfig, path: str = "") -> ResumeState:
    """The state a run with ``cfg`` takes from a loaded checkpoint ``payload``.

    An optimizer of another kind is refused (ValueError) unless ``resume_optimizer_state=false``;
    so is a network of another class than the config's (named, never imported: the run builds
    its network from the config in force, which names its classes itself).
    """
    stored = upgrade_legacy_sections((payload.get("hyper_parameters") or {}).get("cfg") or {})
    saved_network, network = _network_name(stored.get("model")), _network_name(cfg.model)
    if saved_network is not None and saved_network != network:
        raise ValueError(
            f"the checkpoint's network is {saved_network}, this config's is {network}; resume "
            "with the checkpoint's model (model=<its option>, with its --config-dir)"
        )
    saved_optimizer = _saved_optimizer_name(payload)
    if cfg.resume_optimizer_state and saved_optimizer not in (None, cfg.optim.name):
        raise ValueError(
            f"the checkpoint was trained with optim={saved_optimizer}, this run uses "
            f"optim={cfg.optim.name}; add resume_optimizer_state=false to start the "
            "optimizer's statistics afresh (weights and counters are still restored)"
        )
    _log_changed_values(payload, cfg)
    states = payload.get("optimizer_states") or []
    keep = cfg.resume_optimizer_state and bool(states)
    return ResumeState(path, payload["state_dict"], states[0] if keep else None, payload["a3c"])


def _network_name(section: Any) -> str | None:
    """A model section's network, by ``_target_`` or built-in ``name`` (None if unknown)."""
    if dataclasses.is_dataclass(section):
        section = (
            {"_target_": section.target}
            if hasattr(section, "target")
            else {"name": getattr(section, "name", None)}
        )
    if not isinstance(section, Mapping):
        return None
    if "_target_" in section:
        return str(section["_target_"])
    return str(section["name"]) if section.get("name") else None


def restore_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    """Copy saved weights into ``model``'s (shared) tensors; ValueError if the shapes differ."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in weights.items()}
    if own != saved:
        diff = sorted(set(own.items()) ^ set(saved.items()))
        raise ValueError(
            f"the checkpoint's network does not match this config's model "
            f"(first difference: {diff[0][0]})"
        )
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(weights[name])


def _log_changed_values(payload: dict[str, Any], cfg: TrainConfig) -> None:
    """Say which optimizer and loss values differ from the checkpoint's (the new ones hold)."""
    from a3c_exp.config import as_plain_data

    stored = (payload.get("hyper_parameters") or {}).get("cfg") or {}
    now = as_plain_data(cfg)
    for section in ("optim", "loss"):
        old_values = stored.get(section) or {}
        for key, value in now[section].items():
            if key in old_values and old_values[key] != value:
                log.info("resume: %s.%s %s -> %s (in force)", section, key, old_values[key], value)


def _mean_reward(payload: dict[str, Any]) -> float | None:
    rewards = [r for r in payload.get("a3c", {}).get("recent_rewards") or [] if math.isfinite(r)]
    return sum(rewards) / len(rewards) if len(rewards) >= 100 else None


class CheckpointManager:
    """Writes ``step-<N>.ckpt``, ``last.ckpt`` and ``best.ckpt`` in one folder (newest N kept)."""

    def __init__(
        self,
        directory: Path,
        keep: int,
        best_reward: float | None = None,
        last_saved: tuple[Path, int] | None = None,
    ):
        self.directory = Path(directory)
        self.keep = keep
        self.best_reward = best_reward  # the last-100 mean of best.ckpt (resume: its own)
        # the newest checkpoint known to be whole, and its env step (resume: the one resumed)
        self.last_saved = last_saved

    def save(self, payload: dict[str, Any], step: int, periodic: bool) -> Path:
        """Write ``last.ckpt`` (and a numbered copy when ``periodic``); return the last path.

        ``best.ckpt`` is rewritten whenever the payload's last-100 mean reward beats the best
        checkpoint written so far. Every file is written from the one payload (one snapshot);
        the payload records the best checkpointed reward so a resumed run compares against it.
        """
        reward = _mean_reward(payload)
        is_best = reward is not None and (self.best_reward is None or reward > self.best_reward)
        if is_best:
            self.best_reward = reward
        payload["a3c"]["best_checkpoint_reward"] = self.best_reward
        last = self.directory / "last.ckpt"
        atomic_save(payload, last)
        self.last_saved = (last, int(step))
        if periodic and self.keep > 0:
            atomic_save(payload, self.directory / f"step-{step:010d}.ckpt")
            self._rotate()
        if is_best:
            atomic_save(payload, self.best_path)
        return last

    @property
    def best_path(self) -> Path:
        """The checkpoint with the best last-100 mean reward so far."""
        return self.directory / "best.ckpt"

    def periodic_checkpoints(self) -> list[Path]:
        """Numbered checkpoints, oldest first."""
        pattern = re.compile(r"step-(\d+)\.ckpt$")
        found = [p for p in self.directory.glob("step-*.ckpt") if pattern.search(p.name)]
        return sorted(found, key=lambda p: int(pattern.search(p.name).group(1)))

    def _rotate(self) -> None:
        for old in self.periodic_checkpoints()[: -self.keep]:
            old.unlink(missing_ok=True)
