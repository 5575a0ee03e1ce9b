"""Checkpoint files: atomic writes, rotation, and safe loading.

A checkpoint is a Lightning-format dict (``state_dict``, ``hyper_parameters``,
``pytorch-lightning_version``, ``optimizer_states``) plus an ``a3c`` section with the run's
counters, so ``A3CModule.load_from_checkpoint(path)`` works and ``resume=`` continues the run.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the file and the problem."""


def atomic_save(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


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
    return payload


def _mean_reward(payload: dict[str, Any]) -> float | None:
    rewards = payload.get("a3c", {}).get("recent_rewards") or []
    return sum(rewards) / len(rewards) if len(rewards) >= 100 else None


class CheckpointManager:
    """Writes ``step-<N>.ckpt``, ``last.ckpt`` and ``best.ckpt`` in one folder (newest N kept)."""

    def __init__(self, directory: Path, keep: int, best_reward: float | None = None):
        self.directory = Path(directory)
        self.keep = keep
        self.best_reward = best_reward

    def save(self, payload: dict[str, Any], step: int, periodic: bool) -> Path:
        """Write ``last.ckpt`` (and a numbered copy when ``periodic``); return the last path.

        ``best.ckpt`` is rewritten whenever the payload's last-100 mean reward is the best seen.
        """
        last = self.directory / "last.ckpt"
        atomic_save(payload, last)
        if periodic and self.keep > 0:
            atomic_save(payload, self.directory / f"step-{step:010d}.ckpt")
            self._rotate()
        reward = _mean_reward(payload)
        if reward is not None and (self.best_reward is None or reward > self.best_reward):
            atomic_save(payload, self.best_path)
            self.best_reward = reward
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
