"""TensorBoard event files (``logger=tensorboard``), written with TensorBoard's own writer.

Every metric goes to ``<run dir>/tensorboard/`` under the same name as in W&B and
``metrics.csv`` (``Perf/Mean Reward (last 100)``, ``Losses/Entropy``, ``Intrinsic/Reward`` ...)
with the env step (``global_step``) as TensorBoard's step, so ``tensorboard --logdir outputs``
compares runs on the same axis as the W&B dashboards. A resumed run writes into the same folder
and drops the events the first run wrote past its checkpoint (``purge_step``), so a curve has
one point per step. Episode GIFs stay files in ``videos/`` (TensorBoard draws videos only
from tensors).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from a3c_exp.reporting.sinks import SinkContext
    from a3c_exp.typing import Metrics


class TensorBoardSink:
    """Scalars against env steps in one TensorBoard run (``SummaryWriter``)."""

    def __init__(self, context: SinkContext, flush_secs: float = 10.0):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = context.run_dir / "tensorboard"
        self._writer = SummaryWriter(
            log_dir=str(self.log_dir),
            purge_step=context.start_step if context.start_step > 0 else None,
            flush_secs=math.ceil(flush_secs),
        )
        self._last_step = context.start_step

    def log(self, metrics: Metrics) -> None:
        """Every finite metric of the interval at its ``global_step``."""
        step = int(metrics["global_step"])
        self._last_step = step
        for key, value in metrics.items():
            if key != "global_step" and _is_number(value):
                self._writer.add_scalar(key, float(value), step)

    def summary(self, values: Metrics) -> None:
        """The end-of-run values as ``Summary/<name>`` scalars at the last step."""
        for key, value in values.items():
            if _is_number(value):
                self._writer.add_scalar(f"Summary/{key}", float(value), self._last_step)

    def log_video(self, path: str, step: int) -> None:
        """The GIF stays in ``videos/``; TensorBoard gets its path as text."""
        self._writer.add_text("Media/Episode", path, step)

    def close(self, exit_code: int) -> None:
        """Flush the event file and close it."""
        self._writer.close()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
