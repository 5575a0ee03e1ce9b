"""The channel between a sweep job and its trial: reports out, a prune request in.

A job of a pruning sweep (``trial_report_every`` set) appends its running objective to
``trial_reports.jsonl`` in its run directory each time the run's env steps pass a multiple of
``trial_report_every``: every trial reports at the same step numbers, which is what Optuna's
pruners compare. The sweeper (the study's only owner) reads those lines, reports them to the
trial and, when the pruner says so, writes ``prune.request`` into the job's directory; the run
sees it and stops like any other stop (final checkpoint, W&B run finished, exit 0) with the
stop reason ``pruned``.

Plain files keep the sweeper and the jobs apart: it works for jobs in processes of their own,
on Slurm nodes or as Ray tasks, wherever the sweep directory is reachable by both.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from a3c_exp.files import append_lines, atomic_write_text

REPORTS = "trial_reports.jsonl"
"""One JSON line per milestone: ``{"step": <env steps>, "value": <running objective>}``."""
PRUNE_REQUEST = "prune.request"
"""Written by the sweeper: the job is to stop, its trial was pruned."""


class TrialReporter:
    """The job's side: report the objective at each milestone, notice a prune request."""

    def __init__(self, run_dir: Path, every: int, start_step: int = 0, poll_s: float = 0.5):
        self.path = Path(run_dir) / REPORTS
        self.request = Path(run_dir) / PRUNE_REQUEST
        self.every = every
        self.next_milestone = (start_step // every + 1) * every
        self.poll_s = poll_s
        self._next_poll = 0.0

    def report(self, global_step: int, value: float | None) -> None:
        """Append one line per milestone passed since the last call (none without a value)."""
        lines = []
        while global_step >= self.next_milestone:
            if value is not None and math.isfinite(value):
                lines.append(json.dumps({"step": self.next_milestone, "value": float(value)}))
            self.next_milestone += self.every
        append_lines(self.path, lines)  # whole lines: the sweeper never reads half of one

    def pruned(self) -> bool:
        """Whether the sweeper asked this job to stop (checked at most every ``poll_s``)."""
        now = time.monotonic()
        if now < self._next_poll:
            return False
        self._next_poll = now + self.poll_s
        return self.request.exists()


def read_reports(run_dir: Path) -> dict[int, float]:
    """The reports a job has written so far, by step (a line still being written is skipped)."""
    path = Path(run_dir) / REPORTS
    reports: dict[int, float] = {}
    if not path.is_file():
        return reports
    for line in path.read_text().splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        reports[int(data["step"])] = float(data["value"])
    return reports


def request_prune(run_dir: Path) -> None:
    """Ask the job running in ``run_dir`` to stop (its trial was pruned)."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / PRUNE_REQUEST, "pruned by the sweep's pruner\n")
