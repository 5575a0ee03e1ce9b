"""Optimizers whose state lives in shared memory, updated by every worker (Hogwild)."""

from a3c_exp.optim.shared import SharedAdam, SharedRMSprop, share_optimizer_state

__all__ = ["SharedAdam", "SharedRMSprop", "share_optimizer_state"]
