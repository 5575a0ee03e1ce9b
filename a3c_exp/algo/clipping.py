"""Gradient-norm clipping: the fixed bound (``loss.max_grad_norm``) and a bound relative to the
norms a worker has recently seen (``loss.relative_grad_clip``).

Why a relative bound: a fixed clip is set for the learning phase, where a rollout's gradient
norm is 40-250, and never binds once a task is solved, where calm norms are 2-4. One surprising
rollout (health_gathering: a death after many full survivals) then gives a norm of 50-1,300,
clipped to 40, i.e. 10-20x a calm step. Adam does not damp it: its second moments are an average
over ~1,000 calm updates, so the surprise passes almost unnormalised and, unlike the calm
updates whose directions cancel, it moves every weight the same way (a simulation of Adam's
update rule: ~12 learning rates per weight for one such step, ~32 for three in a row). Bounding
each norm to a multiple of the recent ones caps that move without slowing learning, since the
bound follows the norms up as learning makes them grow.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

# weight of the newest norm in the running mean: about the last 100 updates of the worker
# (3,000 agent steps with 30-step rollouts), long enough to span a calm stretch, short enough
# to follow the norms as learning makes them grow (at most ratio - 1 percent an update)
NORM_MEAN_DECAY = 0.99


class GradClipper:
    """Clips a worker's gradients to ``max_norm`` and, if ``ratio`` is set, to ``ratio`` times
    the running mean of the norms it let through."""

    def __init__(self, max_norm: float, ratio: float | None = None):
        self.max_norm = max_norm
        self.ratio = ratio
        self.mean_norm: float | None = None

    def bound(self) -> float:
        """The norm gradients are clipped to now."""
        if self.ratio is None or self.mean_norm is None:
            return self.max_norm
        return min(self.max_norm, self.ratio * self.mean_norm)

    def clip(self, parameters: Iterable[torch.nn.Parameter]) -> float:
        """Scale the gradients down to the bound; return their norm before clipping.

        A non-finite norm is returned as it is and leaves the running mean alone (the caller
        skips that update).
        """
        params = [p for p in parameters if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        bound = self.bound()
        torch.nn.utils.clip_grads_with_norm_(params, bound, norm)
        total = float(norm)
        if self.ratio is not None and total == total and total != float("inf"):
            applied = min(total, bound)
            self.mean_norm = (
                applied
                if self.mean_norm is None
                else NORM_MEAN_DECAY * self.mean_norm + (1 - NORM_MEAN_DECAY) * applied
            )
        return total
