"""The W&B run of a training job (``logger=wandb``): created and finished by the main process.

Built like every sink (``a3c_exp.reporting.sinks``) from its section ``logger.wandb``. Its
``state()`` is the W&B run id, which a resumed run gets back so its curves continue in the
same W&B run.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from a3c_exp.reporting.sinks import SinkContext
    from a3c_exp.typing import Metrics


def has_wandb_credentials() -> bool:
    """Whether an online run could authenticate: WANDB_API_KEY, or a netrc entry for the host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host or "api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def check_wandb_mode(mode: str) -> None:
    """Refuse ``online`` without credentials, in one line, before anything starts."""
    from a3c_exp.config import ConfigError

    if mode == "online" and not has_wandb_credentials():
        raise ConfigError(
            "logger.wandb.mode='online': no W&B credentials (set WANDB_API_KEY or run "
            "`wandb login`), or use logger.wandb.mode=offline and `wandb sync` later"
        )


class WandbSink:
    """Logs interval metrics against ``global_step`` (env steps) to one W&B run.

    The keyword arguments are ``logger.wandb``'s (``a3c_exp.config.WandbConfig``)."""

    def __init__(
        self,
        context: SinkContext,
        project: str = "a3c-exp",
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        job_type: str = "train",
        name: str | None = None,
        id: str | None = None,
        mode: str = "offline",
        log_checkpoints: bool = False,
    ):
        import wandb

        check_wandb_mode(mode)
        resume_id = id or context.state.get("run_id")
        self._wandb = wandb
        self.run = wandb.init(
            project=project,
            entity=entity,
            group=group,
            tags=list(tags or []),
            job_type=job_type,
            name=name or context.run_name,
            mode=mode,
            dir=str(context.run_dir),
            config=context.config,
            id=resume_id,
            resume="allow" if resume_id else None,
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )
        self.run.define_metric("global_step")
        self.run.define_metric("*", step_metric="global_step")
        self.run_id = self.run.id
        self._log_checkpoints = log_checkpoints

    def state(self) -> dict[str, Any]:
        """The W&B run id: a resumed run continues the same W&B run."""
        return {"run_id": self.run_id}

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
