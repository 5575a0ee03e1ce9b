"""The W&B run of a training job: created and finished by the main process only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from a3c_exp.typing import Metrics


class WandbSink:
    """Logs interval metrics against ``global_step`` (env steps) to one W&B run."""

    def __init__(self, cfg: dict[str, Any], run_dir: Path, run_name: str, resume_id: str | None):
        import wandb

        logger_cfg = cfg["logger"]
        self._wandb = wandb
        self.run = wandb.init(
            project=logger_cfg["project"],
            entity=logger_cfg["entity"],
            group=logger_cfg["group"],
            tags=list(logger_cfg["tags"]),
            job_type=logger_cfg["job_type"],
            name=logger_cfg["name"] or run_name,
            mode=logger_cfg["mode"],
            dir=str(run_dir),
            config=cfg,
            id=resume_id,
            resume="allow" if resume_id else None,
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )
        self.run.define_metric("global_step")
        self.run.define_metric("*", step_metric="global_step")
        self.run_id = self.run.id

    def log(self, metrics: Metrics) -> None:
        """Log one interval."""
        self.run.log(dict(metrics))

    def summary(self, values: Metrics) -> None:
        """Set the run's summary values."""
        self.run.summary.update(dict(values))

    def close(self, exit_code: int) -> None:
        """Finish the run (a non-zero code marks it failed), so the next job starts a new one."""
        self.run.finish(exit_code=exit_code)
