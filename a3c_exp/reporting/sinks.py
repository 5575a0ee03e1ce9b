"""Metric sinks behind one small interface: console, CSV learning curve, W&B, TensorBoard,
and sinks of your own.

The console and ``metrics.csv`` are always there. The others are the ``logger`` section's
entries, each built through one door (``build_sink``): a built-in by name (``SINKS``) or a
class of your package by ``_target_``, checked to be a class with ``log`` and ``close`` and
its keys checked against its signature, then called as ``cls(context, **keys)``.

A sink's constructor gets a ``SinkContext``; it implements ``log``, ``summary``,
``log_video`` and ``close`` (``MetricsSink``), and may implement ``state()``: plain data saved
in every checkpoint and handed back as ``context.state`` when the run resumes (how the W&B
sink continues the same W&B run), and ``log_checkpoints(paths)``.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from a3c_exp.reporting.stats import TIMING_PHASES, timing_key
from a3c_exp.typing import Metrics

if TYPE_CHECKING:
    from a3c_exp.config import TrainConfig

log = logging.getLogger("a3c_exp")

CSV_FIELDS = [
    "global_step",
    "Perf/Time",
    "timestamp",  # seconds since the epoch when the row was written (aligns runs in time)
    "Perf/Mean Reward (last 100)",
    "Perf/Mean Length (last 100)",
    "Perf/Reward",
    "Perf/Length",
    "Perf/Value",
    "Perf/Steps per second",
    "Perf/FPS",
    "Perf/Episodes",
    "Perf/Updates",
    "Perf/Updates per second",
    "Losses/Learning Rate",
    "Losses/Value Loss",
    "Losses/Policy Loss",
    "Losses/Entropy",
    "Losses/Grad Norm",
    "Losses/Var Norm",
    "Losses/KL",
    "Losses/Anchor Drift",
    "Faults/Skipped updates",
    "Faults/Non-finite rewards",
    "Faults/Worker restarts",
    "Perf/Server ms per update",
    *(timing_key(phase) for phase in TIMING_PHASES),
]


@dataclass(frozen=True)
class SinkContext:
    """What a sink is told about its run when it is built (in the main process)."""

    run_dir: Path  # the run's directory: every file a sink writes belongs under it
    run_name: str  # the run's name, built from its overrides (doom-w8-ent0.005)
    config: dict[str, Any]  # the run's resolved config as plain data
    start_step: int  # the env step the run starts at (> 0 when it resumes)
    # what this sink's ``state()`` returned in the checkpoint the run resumes from; {} if new
    state: dict[str, Any] = field(default_factory=dict)
    # metric keys beyond the built-in ones that the run will log (its loss terms')
    extra_keys: tuple[str, ...] = ()


class MetricsSink(Protocol):
    """Somewhere metrics go. All methods are called from the main process only."""

    def log(self, metrics: Metrics) -> None:
        """Record one interval's metrics (``metrics['global_step']`` is the x-axis)."""

    def summary(self, values: Metrics) -> None:
        """Record end-of-run summary values."""

    def log_video(self, path: str, step: int) -> None:
        """Record an episode video file (GIF) made at env step ``step``."""

    def close(self, exit_code: int) -> None:
        """Flush and release; ``exit_code != 0`` marks a failed or interrupted run."""


class NullSink:
    """Discards everything (``logger=none`` for W&B)."""

    def log(self, metrics: Metrics) -> None:
        """Discard."""

    def summary(self, values: Metrics) -> None:
        """Discard."""

    def log_video(self, path: str, step: int) -> None:
        """Discard."""

    def close(self, exit_code: int) -> None:
        """Nothing to release."""


class CSVSink:
    """Appends every interval to ``metrics.csv`` in the run directory: the local learning curve."""

    def __init__(self, path: Path, extra_fields: Sequence[str] = ()):
        self.path = Path(path)
        # a resumed run appends under the header its file already has (an older version's
        # columns stay aligned); a new file gets today's columns (and the loss terms')
        header = self._header()
        self._handle = open(self.path, "a", newline="")  # noqa: SIM115 - closed in close()
        fields = header or [*CSV_FIELDS, *extra_fields]
        self._line = io.StringIO()  # one row is formatted here, then written in one call
        self._writer = csv.DictWriter(self._line, fieldnames=fields, extrasaction="ignore")
        if not header:
            self._writer.writeheader()
            self._write_line()

    def _header(self) -> list[str]:
        """The columns of the existing file (none for a new or empty one)."""
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as handle:
            return next(csv.reader(handle), [])

    def log(self, metrics: Metrics) -> None:
        """Write one row, whole, and flush it."""
        self._writer.writerow({**metrics, "timestamp": round(time.time(), 3)})
        self._write_line()

    def _write_line(self) -> None:
        self._handle.write(self._line.getvalue())
        self._handle.flush()
        self._line.seek(0)
        self._line.truncate()

    def summary(self, values: Metrics) -> None:
        """The CSV holds curves only; summaries go to the console and W&B."""

    def log_video(self, path: str, step: int) -> None:
        """Videos stay as files in the run directory."""

    def close(self, exit_code: int) -> None:
        """Close the file."""
        self._handle.close()


class ConsoleSink:
    """One progress line per interval (also in Hydra's log file), and a live bar on a terminal."""

    def __init__(self, total_steps: int, start_step: int = 0):
        self.total_steps = total_steps
        self._progress = None
        if sys.stdout.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]a3c"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
                TextColumn("{task.fields[speed]}"),
                TextColumn("{task.fields[reward]}"),
                TimeElapsedColumn(),
                transient=True,
            )
            self._task = self._progress.add_task(
                "train", total=total_steps, completed=start_step, speed="", reward=""
            )
            self._progress.start()

    def log(self, metrics: Metrics) -> None:
        """Print the interval's headline numbers."""
        reward = metrics.get("Perf/Mean Reward (last 100)")
        reward_text = f"reward(100) {reward:.3f}" if reward is not None else "reward(100) n/a"
        speed_text = f"{metrics['Perf/Steps per second']:,.0f} steps/s"
        if self._progress is not None:
            self._progress.update(
                self._task, completed=metrics["global_step"], speed=speed_text, reward=reward_text
            )
        log.info(
            "step %s/%s | %s | %s | episodes %s | %s",
            f"{int(metrics['global_step']):,}",
            f"{self.total_steps:,}",
            speed_text,
            reward_text,
            f"{int(metrics['Perf/Episodes']):,}",
            _format_seconds(metrics["Perf/Time"]),
        )

    def summary(self, values: Metrics) -> None:
        """Print the end-of-run summary."""
        self._stop_bar()
        text = ", ".join(f"{k}={_format_value(v)}" for k, v in values.items())
        log.info("summary: %s", text)

    def log_video(self, path: str, step: int) -> None:
        """Mention the new video at debug level."""
        log.debug("video at step %d: %s", step, path)

    def close(self, exit_code: int) -> None:
        """Remove the live bar."""
        self._stop_bar()

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def _format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class CompositeSink:
    """Fans every call out to several sinks; closes all of them even if one fails."""

    def __init__(self, sinks: list[MetricsSink], names: list[str] | None = None):
        self.sinks = sinks
        self.names = names if names is not None else [""] * len(sinks)  # "": not in ``logger``

    def log(self, metrics: Metrics) -> None:
        """Log to every sink."""
        for sink in self.sinks:
            sink.log(metrics)

    def summary(self, values: Metrics) -> None:
        """Summarise to every sink."""
        for sink in self.sinks:
            sink.summary(values)

    def log_video(self, path: str, step: int) -> None:
        """Send the video to every sink."""
        for sink in self.sinks:
            sink.log_video(path, step)

    def log_checkpoints(self, paths: dict[str, Path]) -> None:
        """Hand checkpoint files to the sinks that keep them (W&B artifacts)."""
        for sink in self.sinks:
            if hasattr(sink, "log_checkpoints"):
                sink.log_checkpoints(paths)

    def close(self, exit_code: int) -> None:
        """Close every sink, then re-raise the first failure if any."""
        errors = []
        for sink in self.sinks:
            try:
                sink.close(exit_code)
            except Exception as err:  # keep closing the others
                errors.append(err)
        if errors:
            raise errors[0]

    def states(self) -> dict[str, Any]:
        """Each named sink's ``state()`` (for checkpoints), by its ``logger`` entry's name."""
        return {
            name: sink.state()
            for name, sink in zip(self.names, self.sinks, strict=True)
            if name and hasattr(sink, "state")
        }


SINKS: dict[str, str] = {
    "wandb": "a3c_exp.reporting.wandb_sink.WandbSink",
    "tensorboard": "a3c_exp.reporting.tensorboard_sink.TensorBoardSink",
}
"""The built-in sinks by ``logger`` entry name (their typed sections: ``SINK_CONFIGS``)."""


def sink_class(name: str, section: Any) -> tuple[type, dict[str, Any]]:
    """The class of the ``logger.<name>`` entry and the keyword arguments it gets, checked.

    Raises ConfigError (one line) for a target that cannot be imported, is not a class with
    ``log`` and ``close``, or does not take the section's keys.
    """
    from a3c_exp.config import TargetConfig
    from a3c_exp.config.targets import check_arguments, locate

    key = f"logger.{name}"
    if isinstance(section, TargetConfig):
        target, kwargs = section.target, dict(section.kwargs)
    else:
        target = SINKS[name]
        kwargs = {f: getattr(section, f) for f in section.__dataclass_fields__}
    cls = locate(target, key)
    if not (isinstance(cls, type) and callable(getattr(cls, "log", None))):
        from a3c_exp.config import ConfigError

        raise ConfigError(
            f"{key}._target_={target!r}: not a sink class (a class with log, summary, "
            "log_video and close; a3c_exp.reporting.sinks)"
        )
    check_arguments(cls, kwargs, key, target, supplied=("context",))
    return cls, kwargs


def check_sinks(sinks: Mapping[str, Any]) -> None:
    """Import and check every ``logger`` entry before the run starts (nothing is built)."""
    for name, section in sinks.items():
        sink_class(name, section)


def build_sinks(
    cfg: TrainConfig,
    run_dir: Path,
    run_name: str,
    start_step: int,
    resumed: Mapping[str, Any] | None = None,
    extra_keys: Sequence[str] = (),
) -> CompositeSink:
    """Console + CSV always, then every ``logger`` entry, built through ``sink_class``.

    ``resumed``: the checkpoint's counters when the run resumes (each sink gets back the state
    it saved). ``extra_keys``: the loss terms' metric keys (CSV columns, declared up front).
    """
    from a3c_exp.config import as_plain_data

    resumed = resumed or {}
    states = dict(resumed.get("sink_states") or {})
    if "wandb" not in states and resumed.get("wandb_run_id"):  # checkpoints before sink states
        states["wandb"] = {"run_id": resumed["wandb_run_id"]}
    sinks: list[MetricsSink] = [
        ConsoleSink(cfg.total_steps, start_step),
        CSVSink(run_dir / "metrics.csv", extra_keys),
    ]
    names = ["", ""]
    config = as_plain_data(cfg)
    composite = CompositeSink(sinks, names)
    try:
        for name, section in cfg.logger.items():
            cls, kwargs = sink_class(name, section)
            context = SinkContext(
                run_dir,
                run_name,
                config,
                start_step,
                dict(states.get(name) or {}),
                tuple(extra_keys),
            )
            sinks.append(cls(context, **kwargs))
            names.append(name)
    except BaseException:
        composite.close(1)
        raise
    return composite
