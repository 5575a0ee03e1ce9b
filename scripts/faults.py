"""Faults of the machine, case by case: a full disk, a read-only or vanished directory.

Each case runs the real command line on CartPole and looks at how it ended: the exit code, the
last line of its output, whether a traceback was printed, whether the last good checkpoint
loads and resumes, whether any process of the run is left, and for sweeps how many trials the
study counted and whether the summary is current. Prints one table.

As root, a case's disk is a size-limited tmpfs mounted for it: filled with a filler file for a
full disk, remounted read-only for a read-only one. Elsewhere the same cases make the writes
fail by injection (``scripts/fault_inject/sitecustomize.py``: opening a file for writing under
the case's folder raises ENOSPC or EROFS once a trigger file exists).

Usage: python scripts/faults.py [--case run_full_disk ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
INJECT = SCRIPTS / "fault_inject"
BASE = [
    "env=cartpole",
    "workers=2",
    "logger=none",
    "video_every=0",
    "log_every=0.5",
    "checkpoint_every=1000",
    "total_steps=100000000",
    "target_reward=null",
]
SWEEP = [
    "--multirun",
    "hydra/sweeper=a3c_optuna",
    "hydra.sweeper.pruner=none",
    "env=cartpole",
    "workers=1",
    "total_steps=3000",
    "checkpoint_every=1000",
    "logger=none",
    "video_every=0",
    "target_reward=null",
]
LAST_GOOD = re.compile(r"last good checkpoint: (\S+) at ([\d,]+) steps")


@dataclass
class CaseResult:
    """How a case ended, as the table prints it."""

    case: str
    exit_code: int | str
    last_line: str
    traceback: bool
    checkpoint: str  # whether the last good checkpoint loads and resumes
    processes_left: int
    trials: str = "–"  # sweeps: trials the study counts, of n_trials
    summary: str = "–"  # sweeps: whether summary.md lists every job as its record says
    output: str = ""

    def row(self) -> str:
        """The case's row of the table."""
        cells = [
            self.case,
            str(self.exit_code),
            f"`{self.last_line}`",
            "yes" if self.traceback else "no",
            self.checkpoint,
            str(self.processes_left),
            self.trials,
            self.summary,
        ]
        return "| " + " | ".join(cells) + " |"


HEADER = (
    "| case | exit | last line | traceback | last good checkpoint | processes left "
    "| trials counted | summary |\n|---|---|---|---|---|---|---|---|"
)


class Disk:
    """A folder whose writes can be made to fail: a tmpfs as root, injection otherwise."""

    def __init__(self, base: Path, size_mb: int = 64):
        self.path = base / f"disk-{uuid.uuid4().hex[:8]}"
        self.path.mkdir(parents=True)
        self.real = os.geteuid() == 0 and shutil.which("mount") is not None
        self.trigger = base / f"{self.path.name}.fault"
        self.mode = "enospc"
        self.mounts = 0
        if self.real:
            self.mounts = 1
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(self.path)],
                check=True,
            )

    @property
    def how(self) -> str:
        """How this disk fails: a real tmpfs or injected errors."""
        return "tmpfs" if self.real else "injected"

    def env(self, mode: str = "enospc") -> dict[str, str]:
        """The environment a case's processes need (injection only)."""
        if self.real:
            return {}
        self.mode = mode
        return {
            "A3C_FAULT_ROOT": str(self.path),
            "A3C_FAULT_TRIGGER": str(self.trigger),
            "A3C_FAULT_MODE": mode,
        }

    def fill(self) -> None:
        """No space left from now on."""
        if not self.real:
            self.trigger.touch()
            return
        with contextlib.suppress(OSError), open(self.path / ".filler", "wb") as handle:
            block = b"\0" * (1 << 20)
            while True:
                handle.write(block)
                handle.flush()
        with contextlib.suppress(OSError), open(self.path / ".filler2", "wb") as handle:
            while True:  # the last partial megabyte
                handle.write(b"\0" * 4096)
                handle.flush()

    def free(self) -> None:
        """Space again."""
        self.trigger.unlink(missing_ok=True)
        for name in (".filler", ".filler2"):
            (self.path / name).unlink(missing_ok=True)

    def make_read_only(self) -> None:
        """A read-only file system from now on."""
        if self.real:
            # a read-only bind mount over the folder: the kernel refuses `remount,ro` of a
            # tmpfs with files open for writing (the run's logs), not a bind's read-only flag
            subprocess.run(["mount", "--bind", str(self.path), str(self.path)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(self.path)], check=True)
            self.mounts += 1
        else:
            self.trigger.touch()

    def release(self) -> None:
        """Unmount (as root) and remove the folder."""
        if self.real:
            for _ in range(self.mounts):
                subprocess.run(["umount", "-l", str(self.path)], check=False)
        self.trigger.unlink(missing_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)


def _env(marker: str, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", PYTHONUNBUFFERED="1")
    paths = [str(REPO), env.get("PYTHONPATH", "")]
    if extra:
        paths.insert(0, str(INJECT))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["A3C_FAULT_CASE"] = marker  # every process of the case inherits it: found if left
    env.update(extra)
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "w")  # noqa: SIM115 - closed by the caller through the process
    return subprocess.Popen(
        [sys.executable, "-m", "a3c_exp.train", *args],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=log.parent,
        start_new_session=True,
    )


def _wait(condition: Callable[[], bool], timeout: float, proc: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the command ended before the case could act (exit {proc.poll()})")
        time.sleep(0.2)
    raise RuntimeError("timed out waiting for the case's moment")


def processes_left(marker: str, grace: float = 10.0) -> int:
    """Processes of a case still alive after ``grace`` seconds (its marker in their env)."""
    deadline = time.monotonic() + grace
    while True:
        left = []
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if process.environ().get("A3C_FAULT_CASE") == marker:
                    left.append(process)
        if not left or time.monotonic() >= deadline:
            for process in left:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            return len(left)
        time.sleep(0.5)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 120) -> tuple[int, str]:
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        code = proc.wait()
    return code, log.read_text(errors="replace")


def _last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def checkpoint_resumes(output: str, work: Path, marker: str) -> str:
    """Whether the checkpoint the last line names loads and a run resumes from it."""
    match = LAST_GOOD.search(output)
    if match is None:
        return "gone (its folder was removed)" if "no checkpoint left" in output else "none named"
    path, step = Path(match.group(1)), int(match.group(2).replace(",", ""))
    if not path.is_file():
        return "gone (its folder was removed)"
    saved = work / f"kept-{uuid.uuid4().hex[:6]}.ckpt"
    shutil.copy(path, saved)  # off the failing disk
    run_dir = work / f"resumed-{uuid.uuid4().hex[:6]}"
    overrides = [*BASE[:-2], f"total_steps={step + 1000}", f"resume={saved}"]
    result = subprocess.run(
        [sys.executable, "-m", "a3c_exp.train", f"hydra.run.dir={run_dir}", *overrides],
        env=_env(marker + "-resume", {}),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        return f"resume failed (exit {result.returncode})"
    return f"loads, resumes from {step:,} steps"


# ----------------------------------------------------------------------------- run cases
def _run_case(name: str, work: Path, act: Callable[[Disk, Path], None], mode: str) -> CaseResult:
    disk = Disk(work)
    marker = uuid.uuid4().hex
    try:
        run_dir = disk.path / "run"
        proc = _start(
            [f"hydra.run.dir={run_dir}", *BASE], _env(marker, disk.env(mode)), work / f"{name}.log"
        )
        checkpoint = run_dir / "checkpoints" / "last.ckpt"
        _wait(lambda: checkpoint.is_file(), 120, proc)
        time.sleep(1.0)
        act(disk, run_dir)
        code, output = _finish(proc, work / f"{name}.log")
        left = processes_left(marker)
        resumes = checkpoint_resumes(output, work, marker)
    finally:
        disk.release()
    return CaseResult(
        f"{name} ({disk.how})",
        code,
        _last_line(output),
        "Traceback" in output,
        resumes,
        left,
        output=output,
    )


def run_full_disk(work: Path) -> CaseResult:
    """A run whose disk fills while it trains."""
    return _run_case("run on a full disk", work, lambda disk, _: disk.fill(), "enospc")


def run_read_only(work: Path) -> CaseResult:
    """A run whose directory becomes read-only while it trains."""
    return _run_case("run made read-only", work, lambda disk, _: disk.make_read_only(), "erofs")


def run_dir_removed(work: Path) -> CaseResult:
    """A run whose directory is removed while it trains."""
    return _run_case(
        "run directory removed", work, lambda _, run_dir: shutil.rmtree(run_dir), "enospc"
    )


# ----------------------------------------------------------------------------- sweep cases
def _study_counts(sweep_dir: Path, n_trials: int) -> str:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="a3c", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    counted, apart = 0, 0
    for trial in study.get_trials(deepcopy=False):
        state = trial.state.name
        uncounted = trial.user_attrs.get("interrupted") or trial.user_attrs.get("infrastructure")
        if state in ("COMPLETE", "PRUNED") or (state == "FAIL" and not uncounted):
            counted += 1
        elif state == "FAIL":
            apart += 1
    return f"{counted} of {n_trials} ({apart} not counted: machine or interrupted)"


def _summary_current(sweep_dir: Path) -> str:
    summary = (sweep_dir / "summary.md").read_text()
    records = sorted(sweep_dir.glob("*/job.json"))
    listed = sum(1 for path in records if f"| {path.parent.name} |" in summary)
    unreadable = summary.count("record unreadable")
    return f"{listed} of {len(records)} jobs listed, {unreadable} unreadable"


def sweep_full_disk(work: Path, trials: int = 6) -> CaseResult:
    """An a3c_optuna sweep of ``trials`` trials whose disk fills during its first job, then
    resumed with space."""
    disk = Disk(work, size_mb=96)
    marker = uuid.uuid4().hex
    try:
        sweep_dir = disk.path / "sweep"
        args = [
            *SWEEP,
            f"hydra.sweeper.n_trials={trials}",
            f"hydra.sweep.dir={sweep_dir}",
        ]  # overrides after --multirun
        proc = _start(args, _env(marker, disk.env("enospc")), work / "sweep.log")
        _wait(lambda: (sweep_dir / "0" / "metrics.csv").is_file(), 180, proc)
        disk.fill()
        code, output = _finish(proc, work / "sweep.log", timeout=300)
        left = processes_left(marker)
        disk.free()
        again = _start(args, _env(marker, disk.env("enospc")), work / "sweep-resumed.log")
        again_code, again_output = _finish(again, work / "sweep-resumed.log", timeout=600)
        left += processes_left(marker)
        trials = _study_counts(sweep_dir, trials)
        summary = _summary_current(sweep_dir)
    finally:
        disk.release()
    return CaseResult(
        f"sweep on a full disk, then resumed ({disk.how})",
        f"{code}, then {again_code}",
        _last_line(output),
        "Traceback" in output + again_output,
        "–",
        left,
        trials,
        summary,
        output=output + "\n----- resumed -----\n" + again_output,
    )


def grid_record_emptied(work: Path) -> CaseResult:
    """A finished grid sweep with one job's record emptied, summarised again."""
    sweep_dir = work / "grid"
    marker = uuid.uuid4().hex
    args = [
        "--multirun",
        f"hydra.sweep.dir={sweep_dir}",
        "env=cartpole",
        "workers=1",
        "total_steps=1500",
        "logger=none",
        "video_every=0",
        "seed=0,1",
    ]
    proc = _start(args, _env(marker, {}), work / "grid.log")
    code, output = _finish(proc, work / "grid.log", timeout=300)
    (sweep_dir / "0" / "job.json").write_text("")  # what a write cut by a full disk leaves
    summary_run = subprocess.run(
        [sys.executable, str(SCRIPTS / "sweep_summary.py"), str(sweep_dir)],
        env=_env(marker, {}),
        capture_output=True,
        text=True,
        timeout=180,
    )
    text = summary_run.stdout + summary_run.stderr
    warning = next((line for line in text.splitlines() if "job record" in line), "")
    return CaseResult(
        "grid sweep, a record emptied, summarised again",
        f"{code}, then {summary_run.returncode}",
        warning.strip(),
        "Traceback" in text,
        "–",
        processes_left(marker),
        "–",
        _summary_current(sweep_dir),
        output=output + text,
    )


CASES: dict[str, Callable[[Path], CaseResult]] = {
    "run_full_disk": run_full_disk,
    "run_read_only": run_read_only,
    "run_dir_removed": run_dir_removed,
    "sweep_full_disk": sweep_full_disk,
    "grid_record_emptied": grid_record_emptied,
}


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    """A folder for the cases' logs and copies (kept with ``--keep``)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="a3c-faults-") as tmp:
        yield Path(tmp)


def main() -> None:
    """Run the cases asked for (all by default) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--keep", type=Path, help="keep every case's log in this folder")
    args = parser.parse_args()
    results = []
    with workspace(args.keep) as work:
        for name in args.case:
            print(f"[{name}] running", flush=True)
            results.append(CASES[name](work))
    print(HEADER)
    for result in results:
        print(result.row())


if __name__ == "__main__":
    main()
