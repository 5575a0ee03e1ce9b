"""Optimizers whose state lives in shared memory, updated by every worker (Hogwild)."""

from a3c_exp.optim.shared import (
    OPTIMIZERS,
    SharedAdam,
    SharedRMSprop,
    build_optimizer,
    share_optimizer_state,
)

__all__ = ["OPTIMIZERS", "SharedAdam", "SharedRMSprop", "build_optimizer", "share_optimizer_state"]
