"""The W&B run of a training job: created and finished by the main process only."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from a3c_exp.typing import Metrics

if TYPE_CHECKING:
    from a3c_exp.config import TrainConfig


def has_wandb_credentials() -> bool:
    """Whether an online run could authenticate: WANDB_API_KEY, or a netrc entry for the host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host or "api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class WandbSink:
    """Logs interval metrics against ``global_step`` (env steps) to one W&B run."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, run_name: str, resume_id: str | None):
        import wandb

        from a3c_exp.config import ConfigError, as_plain_data

        logger_cfg = cfg.logger
        if logger_cfg.mode == "online" and not has_wandb_credentials():
            raise ConfigError(
                "logger.mode='online': no W&B credentials (set WANDB_API_KEY or run "
                "`wandb login`), or use logger.mode=offline and `wandb sync` later"
            )
        self._wandb = wandb
        self.run = wandb.init(
            project=logger_cfg.project,
            entity=logger_cfg.entity,
            group=logger_cfg.group,
            tags=list(logger_cfg.tags),
            job_type=logger_cfg.job_type,
            name=logger_cfg.name or run_name,
            mode=logger_cfg.mode,
            dir=str(run_dir),
            config=as_plain_data(cfg),
            id=resume_id,
            resume="allow" if resume_id else None,
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )
        self.run.define_metric("global_step")
        self.run.define_metric("*", step_metric="global_step")
        self.run_id = self.run.id
        self._log_checkpoints = logger_cfg.log_checkpoints

    def log(self, metrics: Metrics) -> None:
        """Log one interval."""
        self.run.log(dict(metrics))

    def log_video(self, path: str, step: int) -> None:
        """Log an episode GIF as ``Media/Episode`` at env step ``step``."""
        self.run.log({"Media/Episode": self._wandb.Video(path, format="gif"), "global_step": step})

    def log_checkpoints(self, paths: dict[str, Path]) -> None:
        """Log checkpoints as one model artifact, aliased by name (``last``, ``best``)."""
        if not self._log_checkpoints:
            return
        for alias, path in paths.items():
            artifact = self._wandb.Artifact(f"model-{self.run.id}", type="model")
            artifact.add_file(str(path), name=Path(path).name)
            self.run.log_artifact(artifact, aliases=[alias])

    def summary(self, values: Metrics) -> None:
        """Set the run's summary values."""
        self.run.summary.update(dict(values))

    def close(self, exit_code: int) -> None:
        """Finish the run (a non-zero code marks it failed), so the next job starts a new one."""
        self.run.finish(exit_code=exit_code)
