"""Sweeps: one record per job, and a summary of the whole sweep kept up to date after each job.

Every job writes ``job.json`` into its own directory (overrides, objective, status, wall time,
steps/s, start and end, error line). ``summarise_sweep`` turns the records of a sweep directory
into ``summary.md``, ``summary.csv`` and ``summary_curves.png``, sorted by objective; the Hydra
callback ``SweepSummaryCallback`` rewrites the tables after every job, so they exist even if the
sweep is stopped, and a failed or pruned job appears in them with its reason; the curves are
drawn when the sweep ends or stops (``scripts/sweep_summary.py`` draws them for any sweep).

Jobs that differ only in ``seed`` are one config run with several seeds: the summary then also
gives, per config, n, mean, IQM and a 95% bootstrap interval of the objective
(``summary_configs.csv`` and a section of ``summary.md``), and ``summary_curves.png`` draws one
line per config (the mean over its seeds) with the interval as a band. At the end of an Optuna sweep
it adds Optuna's views of the study (``optuna_*.png``) and, with W&B, logs the table and plots
as the group's ``sweep-summary`` run.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from a3c_exp.files import atomic_write_text, read_json
from a3c_exp.reporting.labels import MISSING
from a3c_exp.reporting.seed_stats import SeedStats

log = logging.getLogger("a3c_exp")

JOB_RECORD = "job.json"
SECTIONS = ("pbt_summary.md",)
"""Sections a sweeper writes into the sweep directory for ``summary.md`` to end with (the PBT
sweeper's: the best member, its checkpoint, slot use)."""
COLUMNS = ["job", "overrides", "status", "objective", "wall_time_s", "steps_per_s", "error"]
CONFIG_COLUMNS = ["config", "jobs", "n", "mean", "iqm", "ci95_low", "ci95_high", "statuses"]
SEED_KEY = "seed"


@dataclass
class ConfigGroup:
    """The jobs of one config (same overrides but ``seed``) and its objective over seeds."""

    overrides: dict[str, str]
    records: list[dict[str, Any]]
    stats: SeedStats

    def row(self, label: str) -> dict[str, Any]:
        """The config's row of ``summary_configs.csv`` (objective over completed seeds)."""
        statuses: dict[str, int] = {}
        for record in self.records:
            statuses[record.get("status", "?")] = statuses.get(record.get("status", "?"), 0) + 1
        return {
            "config": label,
            "jobs": " ".join(str(r["job"]) for r in self.records),
            "n": self.stats.n,
            "mean": self.stats.mean if self.stats.n else None,
            "iqm": self.stats.iqm if self.stats.n else None,
            "ci95_low": self.stats.ci_low,
            "ci95_high": self.stats.ci_high,
            "statuses": ", ".join(f"{count} {status}" for status, count in statuses.items()),
        }


def config_groups(records: list[dict[str, Any]]) -> list[ConfigGroup]:
    """Records grouped by config (overrides without ``seed``), best mean first.

    A seed's objective counts when its job completed; pruned and failed seeds are listed in
    the config's statuses but not averaged (a pruned job's value is from part of its budget).
    """
    from a3c_exp.reporting.labels import parse_overrides

    groups: dict[tuple[tuple[str, str], ...], list[dict[str, Any]]] = {}
    for record in records:
        overrides = parse_overrides(record.get("overrides") or [])
        overrides.pop(SEED_KEY, None)
        groups.setdefault(tuple(overrides.items()), []).append(record)
    result = []
    for key, members in groups.items():
        values = [_objective_value(r) for r in members if r.get("status") == "completed"]
        result.append(
            ConfigGroup(dict(key), members, SeedStats.of([v for v in values if v is not None]))
        )
    return sorted(result, key=lambda g: (g.stats.n == 0, -g.stats.mean if g.stats.n else 0.0))


def _objective_value(record: dict[str, Any]) -> float | None:
    value = record.get("objective")
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def has_seeds(groups: list[ConfigGroup]) -> bool:
    """Whether some config ran with more than one seed."""
    return any(len(group.records) > 1 for group in groups)


def config_labels(groups: list[ConfigGroup]) -> tuple[str, list[str]]:
    """(what every config shares, each config's label with its seed count)."""
    from a3c_exp.reporting.labels import sweep_labels

    title, labels = sweep_labels([[f"{k}={v}" for k, v in g.overrides.items()] for g in groups])
    return title, [
        f"{label or 'all'} (n={len(g.records)})" for g, label in zip(groups, labels, strict=True)
    ]


def write_job_record(job_dir: Path, record: dict[str, Any]) -> None:
    """Write one job's record (plain data) into its directory, whole or not at all."""
    atomic_write_text(Path(job_dir) / JOB_RECORD, json.dumps(record, indent=2, default=str))


def completed_record(job_dir: Path, overrides: Sequence[str]) -> dict[str, Any] | None:
    """The record in ``job_dir`` if it is of a completed job with these overrides, else None.

    A sweep run again over its own directory does not redo such a job (the launchers skip it,
    and a job started anyway returns the recorded objective); failed, interrupted, pruned or
    never-started jobs run again.
    """
    record = read_json(Path(job_dir) / JOB_RECORD, "job record")
    if not isinstance(record, dict):
        return None
    task = [o for o in overrides if not o.startswith("hydra.")]
    if record.get("status") != "completed" or list(record.get("overrides") or []) != task:
        return None
    return record


UNREADABLE = "record unreadable"
"""The status a summary shows for a job whose ``job.json`` is empty or truncated."""


def read_job_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """Records of every job under ``sweep_dir``, best objective first, failures last.

    A record that cannot be read (empty, truncated: written on a full disk by an older
    version) is listed with the status ``record unreadable`` and a warning naming its file.
    """
    records = []
    for path in sorted(Path(sweep_dir).glob(f"*/{JOB_RECORD}")):
        record = read_json(path, "job record")
        if not isinstance(record, dict):
            job = path.parent.name
            record = {"job": int(job) if job.isdigit() else job, "status": UNREADABLE}
            record["error"] = f"{path} is empty or truncated"
        record["job_dir"] = str(path.parent)
        records.append(record)

    def key(record: dict[str, Any]) -> tuple[int, float]:
        objective = record.get("objective")
        ok = (
            record.get("status") == "completed"
            and isinstance(objective, int | float)
            and not (math.isnan(objective))
        )
        return (0 if ok else 1, -objective if ok else 0.0)

    return sorted(records, key=key)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(value)
    return "" if value is None else str(value)


def summarise_sweep(
    sweep_dir: Path, plot: bool = True, per_config: bool = True
) -> list[dict[str, Any]]:
    """Write summary.md / summary.csv (and summary_curves.png) for a sweep; return the rows.

    ``per_config=False`` writes the job table only: no statistics over seeds (IQM and
    bootstrap intervals: SciPy's import and 2,000 resamples a config).
    """
    sweep_dir = Path(sweep_dir)
    records = read_job_records(sweep_dir)
    rows = [{column: record.get(column) for column in COLUMNS} for record in records]
    write_csv(
        sweep_dir / "summary.csv", COLUMNS, [{k: _cell(v) for k, v in r.items()} for r in rows]
    )
    lines = [
        f"# Sweep {sweep_dir}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += [
        "| " + " | ".join(_cell(row[c]).replace("|", "/") for c in COLUMNS) + " |" for row in rows
    ]
    groups = config_groups(records) if per_config or plot else []
    if per_config and has_seeds(groups):
        config_rows = write_config_table(sweep_dir, groups)
        lines += [
            "",
            "## Per config, over its seeds",
            "",
            "n: completed seeds; mean, IQM (interquartile mean) and the 95% bootstrap interval "
            "of the mean of their objectives.",
            "",
            "| " + " | ".join(CONFIG_COLUMNS) + " |",
            "|" + "---|" * len(CONFIG_COLUMNS),
        ]
        lines += [
            "| " + " | ".join(_cell(row[c]).replace("|", "/") for c in CONFIG_COLUMNS) + " |"
            for row in config_rows
        ]
    for name in SECTIONS:
        if (sweep_dir / name).is_file():
            lines += ["", (sweep_dir / name).read_text().rstrip()]
    atomic_write_text(sweep_dir / "summary.md", "\n".join(lines) + "\n")
    if plot and records:
        if has_seeds(groups):
            plot_config_curves(sweep_dir, groups)
        else:
            plot_sweep_curves(sweep_dir, records)
    return rows


def write_config_table(sweep_dir: Path, groups: list[ConfigGroup]) -> list[dict[str, Any]]:
    """``summary_configs.csv``: one row per config; return the rows."""
    _, labels = config_labels(groups)
    rows = [group.row(label) for group, label in zip(groups, labels, strict=True)]
    cells = [{k: _cell(v) for k, v in row.items()} for row in rows]
    write_csv(Path(sweep_dir) / "summary_configs.csv", CONFIG_COLUMNS, cells)
    return rows


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """A CSV table written whole or not at all."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def plot_config_curves(sweep_dir: Path, groups: list[ConfigGroup]) -> Path:
    """``summary_curves.png``: a line per config, the mean over its seeds, with a band."""
    from a3c_exp.reporting.plots import plot_config_bands

    title, labels = config_labels(groups)
    bands = [
        (label, [Path(r["job_dir"]) for r in group.records])
        for group, label in zip(groups, labels, strict=True)
    ]
    return plot_config_bands(bands, Path(sweep_dir) / "summary_curves.png", title)


def plot_sweep_curves(sweep_dir: Path, records: list[dict[str, Any]]) -> Path | None:
    """``summary_curves.png``: a curve a job, named by what it changed, failed jobs in a note."""
    from a3c_exp.reporting.labels import sweep_labels
    from a3c_exp.reporting.plots import plot_learning_curves

    title, labels = sweep_labels([r.get("overrides") or [] for r in records])
    # "3: ent=0.0244 λ=0.938": the job number leads to its row of summary.md and its directory
    labels = [f"{r['job']}: {label}".strip() for r, label in zip(records, labels, strict=True)]
    plotted, names, notes = [], [], []
    for record, label in zip(records, labels, strict=True):
        if (Path(record["job_dir"]) / "metrics.csv").exists():
            plotted.append(Path(record["job_dir"]))
            names.append(label)
        else:
            reason = record.get("error") or "no metrics"
            notes.append(f"no curve for job {label}: {record['status']}, {reason}")
    if not plotted:
        return None
    return plot_learning_curves(plotted, sweep_dir / "summary_curves.png", names, title, notes)


def _typed(value: str) -> int | float | str:
    """An override's value as the number it spells, so a W&B table column sorts numerically."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _number(value: Any) -> float | None:
    """A float for W&B, None for a missing or NaN value (a failed job has no objective)."""
    if isinstance(value, int | float) and not math.isnan(value):
        return float(value)
    return None


def wandb_table_data(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(columns, data) of the sweep table for W&B: one column per swept key, numbers as numbers.

    A table panel then sorts and filters jobs by any swept value, objective, speed or status.
    """
    from a3c_exp.reporting.labels import split_overrides

    _, varying = split_overrides([row["overrides"] or [] for row in rows])
    keys = list(varying[0]) if varying else []
    columns = ["job", *keys, "objective", "steps_per_s", "wall_time_s", "status", "error"]
    data = [
        [
            row["job"],
            *(None if job[key] == MISSING else _typed(job[key]) for key in keys),
            _number(row["objective"]),
            _number(row["steps_per_s"]),
            _number(row["wall_time_s"]),
            row["status"],
            row["error"] or "",
        ]
        for row, job in zip(rows, varying, strict=True)
    ]
    return columns, data


def log_summary_to_wandb(
    sweep_dir: Path, rows: list[dict[str, Any]], logger_cfg: dict, images: Sequence[Path] = ()
) -> None:
    """Log the sweep table (and the sweep's plots) to W&B as a ``sweep-summary`` run."""
    import wandb

    columns, data = wandb_table_data(rows)
    run = wandb.init(
        project=logger_cfg["project"],
        entity=logger_cfg["entity"],
        group=logger_cfg["group"],
        job_type="sweep-summary",
        name=f"summary-{logger_cfg['group']}",
        mode=logger_cfg["mode"],
        dir=str(sweep_dir),
        settings=wandb.Settings(console="off", x_disable_stats=True),
    )
    try:
        logged: dict[str, Any] = {"sweep/summary": wandb.Table(columns=columns, data=data)}
        for path in images:  # "sweep/summary_curves", "sweep/optuna_history", ...
            logged[f"sweep/{Path(path).stem}"] = wandb.Image(str(path))
        groups = config_groups(read_job_records(sweep_dir))
        if has_seeds(groups):  # per config over its seeds: n, mean, IQM, interval
            _, labels = config_labels(groups)
            config_rows = [g.row(label) for g, label in zip(groups, labels, strict=True)]
            logged["sweep/configs"] = wandb.Table(
                columns=CONFIG_COLUMNS,
                data=[[row[c] for c in CONFIG_COLUMNS] for row in config_rows],
            )
        run.log(logged)
        counts: dict[str, Any] = {}
        for row in rows:  # jobs_completed, jobs_pruned, jobs_failed, ...
            counts[f"jobs_{row['status']}"] = counts.get(f"jobs_{row['status']}", 0) + 1
        best = next((r for r in rows if r["status"] == "completed"), None)
        if best is not None:
            counts.update({"best_objective": best["objective"], "best_job": best["job"]})
        run.summary.update(counts)
    finally:
        run.finish()


def sweep_objective(sweep_dir: Path) -> str:
    """The name of the value the sweep's jobs returned (``objective`` in a job's config)."""
    from omegaconf import OmegaConf

    for path in sorted(Path(sweep_dir).glob("*/.hydra/config.yaml")):
        return str(OmegaConf.load(path).get("objective", "objective"))
    return "objective"


def write_study_plots(sweep_dir: Path, objective: str | None = None) -> list[Path]:
    """Optuna's views of the sweep's study (``optuna.db``), if it has one; their paths."""
    from a3c_exp.reporting.study_plots import plot_study
    from a3c_exp.study import load_sweep_study

    study = load_sweep_study(sweep_dir)
    if study is None:
        return []
    return plot_study(study, sweep_dir, objective or sweep_objective(sweep_dir))


def sweep_images(sweep_dir: Path) -> list[Path]:
    """The plots of a sweep directory that exist: curves first, then Optuna's views."""
    from a3c_exp.reporting.study_plots import HISTORY, IMPORTANCES, SLICE

    names = ["summary_curves.png", HISTORY, IMPORTANCES, SLICE]
    return [Path(sweep_dir) / name for name in names if (Path(sweep_dir) / name).is_file()]


class SweepSummaryCallback(Callback):
    """Rewrites the sweep summary after every job of a ``--multirun``."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Rewrite the sweep's tables after the job that just ended (multirun only).

        The job table only: the curves and the statistics over seeds are made at the end of
        the sweep (or by ``scripts/sweep_summary.py``). Both here kept each job, and so its
        slot, seconds longer (the statistics: ~2 s of SciPy import and bootstrap a job).
        """
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        try:
            summarise_sweep(Path(hydra_cfg.sweep.dir), plot=False, per_config=False)
        except Exception as err:  # a summary problem must never fail the sweep
            log.warning("sweep summary not written: %s", err)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Draw Optuna's views of the study, if any; log table and plots to W&B when used."""
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = summarise_sweep(sweep_dir)
        log.info("sweep summary: %s", sweep_dir / "summary.md")
        try:
            write_study_plots(sweep_dir, str(config.get("objective", "objective")))
        except Exception as err:  # the study's plots must not hide the sweep's results
            log.warning("Optuna plots not written: %s", err)
        logger_cfg = (config.get("logger") or {}).get("wandb")
        if rows and logger_cfg is not None:
            from omegaconf import OmegaConf

            data = OmegaConf.to_container(logger_cfg, resolve=True)
            data["group"] = data.get("group") or sweep_group(sweep_dir)
            log_summary_to_wandb(sweep_dir, rows, data, sweep_images(sweep_dir))


def sweep_group(sweep_dir: Path) -> str:
    """The default W&B group of a sweep: its directory's last two parts (date and time)."""
    return "sweep-" + "-".join(Path(sweep_dir).parts[-2:])
