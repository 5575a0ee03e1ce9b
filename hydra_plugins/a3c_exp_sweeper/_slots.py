"""What both sweepers of this plugin share: how a job ended, the schedule, and faults.

``a3c_optuna`` (``_study_runner``) and ``a3c_pbt`` (``_pbt``) both run training jobs one per
free slot through a launcher, read each job's record to learn how it ended
(``job_outcome``), keep ``schedule.csv`` (every job's start and end: how busy the slots
were), and stop in one line when the sweep's own files cannot be written.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus

from a3c_exp.files import atomic_write_text, fault_line, read_json
from a3c_exp.sweep import JOB_RECORD

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
INFRASTRUCTURE = "infrastructure"
"""Status of a job (and user attribute of its trial) that a fault of the machine stopped."""
SCHEDULE = "schedule.csv"
"""Each job's start and end (seconds since the epoch), how it ended, and what it was for."""


class SweepStopped(Exception):
    """The sweep cannot go on (its records cannot be written, the machine keeps failing
    jobs); the message is the one line to print."""


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended, from its record (or, when that is unreadable, its return)."""

    status: str  # completed, pruned, failed, infrastructure, ... (the record's)
    value: float | None  # its objective
    error: str  # its error line ("" if none)
    record: dict[str, Any]


def read_record(job_dir: Path) -> dict[str, Any]:
    """A job's ``job.json`` ({} when missing, empty or truncated; the latter with a warning)."""
    record = read_json(Path(job_dir) / JOB_RECORD, "job record")
    return record if isinstance(record, dict) else {}


def is_machine_fault(error: Any) -> bool:
    """Whether a failed job's returned error is a fault of the machine (``MachineFault``)."""
    from a3c_exp.train import MachineFault

    return isinstance(error, MachineFault)


def job_outcome(job_dir: Path, result: JobReturn) -> JobOutcome:
    """How a job ended: its record's status and objective; a job whose record could not be
    written (a full disk) is known by its return (``MachineFault``: infrastructure)."""
    record = read_record(job_dir)
    failed = result.status != JobStatus.COMPLETED
    if failed and is_machine_fault(result._return_value):
        record.setdefault("status", INFRASTRUCTURE)
        record.setdefault("error", str(result._return_value))
    status = record.get("status") or ("failed" if failed else "completed")
    value = record.get("objective", None if failed else result._return_value)
    value = float(value) if isinstance(value, int | float) else None
    return JobOutcome(status, value, str(record.get("error") or ""), record)


def write_schedule(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """``schedule.csv``: the given jobs' rows, beside those an earlier run of the sweep wrote
    (a resumed sweep keeps its history), written whole."""
    path = Path(sweep_dir) / SCHEDULE
    old: list[dict[str, Any]] = []
    if path.is_file():
        with open(path, newline="") as handle:
            mine = {str(row["job"]) for row in rows}
            old = [row for row in csv.DictReader(handle) if row.get("job") not in mine]
    every = old + rows
    columns = list(rows[0]) if rows else (list(old[0]) if old else ["job"])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(every)
    atomic_write_text(path, text.getvalue())


def read_schedule(sweep_dir: Path) -> list[dict[str, str]]:
    """The rows of ``schedule.csv`` (none if there is no file yet)."""
    path = Path(sweep_dir) / SCHEDULE
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


STUDY_WRITE_ERRORS: tuple[type[BaseException], ...] = (
    optuna.exceptions.StorageInternalError,
    sqlite3.OperationalError,
    OSError,
)
"""What a study's storage (and the sweep's own files) raise when the disk refuses a write."""


def study_fault_line(err: BaseException, sweep_dir: Path) -> str:
    """One line for a study or sweep file that cannot be written."""
    cause = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, OSError) and err.errno is not None:
        cause = fault_line(err, sweep_dir)
    return (
        f"the sweep cannot write its records ({cause}) in {sweep_dir}; running jobs stopped; "
        "the same command resumes the sweep once the cause is gone"
    )
