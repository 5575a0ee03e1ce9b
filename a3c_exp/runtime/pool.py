"""The worker-pool interface: what the run needs from any backend that runs A3C workers.

A pool starts the workers, restarts the ones that die or go silent, hands the run their
``Update`` messages, takes consistent snapshots of the global network and optimizer, and stops
everything. ``LocalPool`` (processes and shared memory) and ``RayPool`` (actors and a
parameter server) implement it; ``Run`` knows a pool only through this interface.
"""

from __future__ import annotations

from typing import Protocol

from a3c_exp.checkpoint import Snapshot
from a3c_exp.messages import Update
from a3c_exp.typing import Metrics


class PoolError(RuntimeError):
    """The pool lost what it cannot do without (the parameter server); one line."""


class WorkerPool(Protocol):
    """A backend that runs the A3C workers of one run."""

    restarts: int  # workers restarted since ``start``

    def start(self) -> None:
        """Start every worker."""

    def poll(self, timeout: float) -> list[Update]:
        """The updates that arrived (waits up to ``timeout`` seconds for the first one)."""

    def supervise(self) -> str | None:
        """Restart dead or silent workers; past ``max_restarts``, the failure as text."""

    def snapshot(self) -> Snapshot:
        """Weights, optimizer statistics and update count copied at one instant."""

    def applied_updates(self) -> int:
        """Optimizer steps applied so far (counted where the step happens)."""

    def metrics(self) -> Metrics:
        """Backend figures for the report (may be empty)."""

    def stop(self, grace: float) -> list[Update]:
        """Stop every worker (``grace`` seconds to finish, then by force); the last updates."""

    def close(self) -> None:
        """Release what the pool started (idempotent)."""
