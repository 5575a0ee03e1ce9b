"""The worker-pool interface: what the run needs from any backend that runs A3C workers.

A pool starts the workers, restarts the ones that die or go silent, hands the run their
``Update`` messages, takes consistent snapshots of the global network and optimizer, and stops
everything. ``LocalPool`` (processes and shared memory) and ``RayPool`` (actors and a
parameter server) implement it; ``Run`` knows a pool only through this interface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from a3c_exp.algo.agent import check_agent_fits
from a3c_exp.algo.global_model import GlobalModel
from a3c_exp.checkpoint import Counts, ResumeState, Snapshot, restore_weights
from a3c_exp.config import as_plain_data
from a3c_exp.messages import Update
from a3c_exp.typing import Metrics

if TYPE_CHECKING:
    from a3c_exp.config import TrainConfig
    from a3c_exp.envs import EnvSpec

log = logging.getLogger("a3c_exp")


class PoolError(RuntimeError):
    """The pool lost what it cannot do without (the parameter server); one line."""


class WorkerPool(Protocol):
    """A backend that runs the A3C workers of one run."""

    restarts: int  # workers restarted since ``start``

    @property
    def hparams(self) -> dict[str, Any]:
        """The global model's hyperparameters, as its checkpoints store them."""

    def loss_terms(self) -> list[tuple[str, Any, float]]:
        """The global model's loss terms (slot key, module, weight), for what they report."""

    def restore(self, state: ResumeState) -> None:
        """Continue from a checkpoint's weights and optimizer statistics (before ``start``)."""

    def start(self) -> None:
        """Start every worker."""

    def poll(self, timeout: float) -> list[Update]:
        """The updates that arrived (waits up to ``timeout`` seconds for the first one)."""

    def supervise(self) -> str | None:
        """Restart dead or silent workers; past ``max_restarts``, the failure as text."""

    def snapshot(self) -> Snapshot:
        """Weights, optimizer statistics and update count copied at one instant."""

    def counts(self) -> Counts:
        """Updates, env steps and episodes, counted where each update was applied."""

    def metrics(self) -> Metrics:
        """Backend figures for the report (may be empty)."""

    def stop(self, grace: float) -> list[Update]:
        """Stop every worker (``grace`` seconds to finish, then by force); the last updates."""

    def close(self) -> None:
        """Release what the pool started (idempotent)."""


class PoolBase:
    """What both backends share: the run's global model, and counting restarts per worker.

    The pool owns the global model (built here, from the run's config, after the run seeded
    torch) and its optimizer; the run reads them only through ``snapshot()``.
    """

    def __init__(
        self, cfg: TrainConfig, env_spec: EnvSpec, run_dir: Path, global_step: Callable[[], int]
    ):
        self.cfg = cfg
        self.env_spec = env_spec
        self.run_dir = Path(run_dir)
        self.global_step = global_step
        self.restarts = 0
        self._per_rank_restarts: dict[int, int] = {}
        self.model = GlobalModel(as_plain_data(cfg), list(env_spec.obs_shape), env_spec.n_actions)
        anchor_on_features = cfg.loss.anchor_coef > 0 and cfg.loss.anchor_on == "features"
        check_agent_fits(self.model, anchor_on_features)

    @property
    def hparams(self) -> dict[str, Any]:
        """The global model's hyperparameters, as its checkpoints store them."""
        return self.model.hparams

    def loss_terms(self) -> list[tuple[str, Any, float]]:
        """The global model's loss terms (slot key, module, weight), for what they report."""
        return self.model.loss_terms()

    def restore(self, state: ResumeState) -> None:
        """Load the checkpoint's weights here; the backend loads the optimizer statistics."""
        restore_weights(self.model, state.weights)

    def _restart_or_fail(self, rank: int, reason: str) -> str | None:
        """Count a restart of worker ``rank``; past ``max_restarts``, the run's failure text."""
        restarts = self._per_rank_restarts.get(rank, 0)
        if restarts >= self.cfg.max_restarts:
            return (
                f"worker {rank} {reason}\n(restart limit max_restarts="
                f"{self.cfg.max_restarts} reached)"
            )
        self._per_rank_restarts[rank] = restarts + 1
        self.restarts += 1
        log.warning(
            "worker %d %s; restarting it (%d/%d)", rank, reason, restarts + 1, self.cfg.max_restarts
        )
        return None
