"""Sweep launcher presets: each composes, and each runs a tiny sweep the way docs/sweeps.md says.

The Slurm test needs a Slurm that answers (``scripts/slurm_local.sh start``, as CI does); it is
skipped, with its reason, where Slurm is not installed or no controller answers, unless
``A3C_REQUIRE_SLURM=1`` (set by CI, which starts one) makes that a failure.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest
import yaml

from a3c_exp.overrides import CONFIG_DIR
from a3c_exp.runtime.cpus import available_cpus
from a3c_exp.sweep import read_job_records
from hydra_plugins.a3c_exp_launchers.launchers import BoundedLocalLauncher
from tests.helpers import cli_env, start_as_a_terminal_job

TINY = ["env=cartpole", "workers=1", "logger=none", "video_every=0", "target_reward=null"]

# The test that runs each preset under conf/hydra/ (a new preset needs one to pass this file).
PRESET_RUN_TESTS = {
    "launcher/parallel_local": "test_parallel_local_keeps_the_bound_and_isolates_a_failure",
    "launcher/slurm": "test_slurm_sweep_gives_each_job_its_workers_as_cpus",
    "launcher/ray": (
        "tests/test_ray_runs.py::"
        "test_ray_launcher_runs_each_sweep_job_as_a_ray_task_keeping_its_slots_busy"
    ),
    "sweeper/a3c_optuna": (
        "tests/test_sweeps.py::test_optuna_study_goes_on_after_a_failed_trial_and_lists_it"
    ),
    "sweeper/a3c_pbt": (
        "tests/test_pbt.py::"
        "test_a_population_exploits_explores_and_resumes_without_running_an_interval_twice"
    ),
}


def _presets() -> list[str]:
    root = Path(CONFIG_DIR) / "hydra"
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.glob("*/*.yaml"))


def _multirun(sweep_dir: Path, *overrides: str, timeout: float = 300, **popen):
    cmd = [sys.executable, "-m", "a3c_exp.train", "--multirun", f"hydra.sweep.dir={sweep_dir}"]
    return subprocess.run(
        [*cmd, *overrides],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=sweep_dir.parent,
        **popen,
    )


_STAMP = re.compile(r"submitit INFO \(([-\d]+ [:\d]+,\d+)\) - (Starting|Exiting)")


def job_intervals(sweep_dir: Path) -> list[tuple[datetime, datetime]]:
    """(start, end) of each job process, from submitit's log of the job."""
    intervals = []
    for log in sorted(sweep_dir.glob(".submitit/*/*_0_log.out")):
        stamps = {}
        for when, what in _STAMP.findall(log.read_text()):
            stamps.setdefault(what, datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f"))
        intervals.append((stamps["Starting"], stamps["Exiting"]))
    return intervals


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals that overlap at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_every_hydra_preset_has_a_run_test():
    assert set(_presets()) == set(PRESET_RUN_TESTS), "add the new preset's run test above"
    here = Path(__file__).read_text()
    for test in PRESET_RUN_TESTS.values():
        path, _, name = test.rpartition("::")
        text = (Path(__file__).parent.parent / path).read_text() if path else here
        assert f"def {name}(" in text, test


@pytest.mark.parametrize("preset", _presets())
def test_every_hydra_preset_composes(compose_train, preset):
    from hydra import compose

    group, name = preset.split("/")
    cfg = compose(
        config_name="train",
        overrides=[f"hydra/{group}={name}", "workers=3"],
        return_hydra_config=True,
    )
    node = cfg.hydra[group]
    assert node._target_
    if group == "launcher":  # resources follow workers
        cpus = node.ray.remote.num_cpus if name == "ray" else node.cpus_per_task
        assert cpus == 3


@pytest.mark.parametrize(
    ("bound", "cpus_per_task", "expected"),
    [
        (None, [1, 1], available_cpus()),
        (None, [1, 2 * available_cpus()], 1),
        (None, [None], available_cpus()),
        (3, [64], 3),
    ],
)
def test_parallel_local_bound_defaults_to_cpus_over_workers(bound, cpus_per_task, expected):
    launcher = BoundedLocalLauncher(array_parallelism=bound, submitit_folder="unused")
    assert launcher.parallel_limit(cpus_per_task) == expected


@pytest.mark.slow
def test_parallel_local_keeps_the_bound_and_isolates_a_failure(tmp_path):
    sweep_dir = tmp_path / "parallel"
    result = _multirun(
        sweep_dir,
        "hydra/launcher=parallel_local",
        "hydra.launcher.array_parallelism=2",
        *TINY,
        "total_steps=2000",
        "loss.gamma=0.99,1.5,0.9",
    )
    assert result.returncode != 0  # Hydra reports the failed job once all have run
    assert "at most 2 of 3 jobs at a time" in result.stderr + result.stdout
    intervals = job_intervals(sweep_dir)
    assert len(intervals) == 3
    assert most_at_once(intervals) == 2
    records = read_job_records(sweep_dir)
    assert [r["status"] for r in records] == ["completed", "completed", "failed"]
    assert records[-1]["error"] == "loss.gamma=1.5: must be in (0, 1]"
    with open(sweep_dir / "summary.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3


@pytest.mark.slow
def test_ctrl_c_stops_every_job_and_its_workers(tmp_path):
    sweep_dir = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "a3c_exp.train", "--multirun", f"hydra.sweep.dir={sweep_dir}"]
    cmd += ["hydra/launcher=parallel_local", "hydra.launcher.array_parallelism=2", *TINY]
    cmd += ["total_steps=10000000", "log_every=0.5", "seed=0,1,2"]
    # A session of its own, like a terminal's foreground job: Ctrl-C goes to its process group.
    sweep = start_as_a_terminal_job(cmd, tmp_path)
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while not all((sweep_dir / j / "metrics.csv").exists() for j in ("0", "1")):
            assert time.monotonic() < deadline and sweep.poll() is None, "jobs did not train"
            time.sleep(0.5)
        tree = psutil.Process(sweep.pid).children(recursive=True)
        assert len(tree) >= 2 * 3  # per job: a controller, the job, its worker(s)
        os.killpg(sweep.pid, signal.SIGINT)
        assert sweep.wait(timeout=60) == 130  # as an interrupted run
        _, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, f"left behind: {[p.pid for p in alive]}"
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
        # the job controllers have sessions of their own: a failed run must not leave its jobs
        # training beside the rest of the suite (seen in CI: two workers for 18 minutes)
        for process in tree:
            with contextlib.suppress(psutil.Error):
                process.kill()
    assert not (sweep_dir / "2").exists()  # the third job never started
    for job in ("0", "1"):  # each job stopped its workers and wrote its final checkpoint
        assert (sweep_dir / job / "checkpoints" / "last.ckpt").is_file()


def _slurm_missing() -> str | None:
    """Why no Slurm can run jobs here (not installed, no controller answers), or None."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "Slurm is not installed"
    try:
        answer = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "Slurm is installed but its controller did not answer sinfo within 30 s"
    if answer.returncode != 0:
        said = (answer.stderr.strip().splitlines() or ["no output"])[-1]
        return f"Slurm is installed but no controller answers (sinfo: {said})"
    return None


def _need_slurm() -> None:
    """Skip without a working Slurm, or fail when ``A3C_REQUIRE_SLURM=1`` (CI starts one)."""
    missing = _slurm_missing()
    if missing is None:
        return
    if os.environ.get("A3C_REQUIRE_SLURM") == "1":
        pytest.fail(f"{missing}; A3C_REQUIRE_SLURM=1 needs one (scripts/slurm_local.sh start)")
    pytest.skip(f"{missing} (scripts/slurm_local.sh start runs a one-node Slurm)")


@pytest.mark.slow
def test_slurm_sweep_gives_each_job_its_workers_as_cpus(tmp_path):
    _need_slurm()
    sweep_dir = tmp_path / "slurm"
    overrides = [o for o in TINY if not o.startswith("workers=")]
    result = _multirun(
        sweep_dir, "hydra/launcher=slurm", *overrides, "total_steps=1500", "workers=1,2"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_job_records(sweep_dir)
    assert [r["status"] for r in records] == ["completed", "completed"]
    workers_of_job = {}
    for record in records:
        hydra_cfg = yaml.safe_load(Path(record["job_dir"], ".hydra", "hydra.yaml").read_text())
        config = yaml.safe_load(Path(record["job_dir"], ".hydra", "config.yaml").read_text())
        workers_of_job[str(hydra_cfg["hydra"]["job"]["id"])] = config["workers"]
    assert sorted(workers_of_job.values()) == [1, 2]
    sacct = subprocess.run(
        ["sacct", "--completion", "--parsable2", "-o", "JobID,State,NCPUS"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {row["JobID"]: row for row in csv.DictReader(sacct.stdout.splitlines(), delimiter="|")}
    for job_id, workers in workers_of_job.items():
        assert rows[job_id]["State"] == "COMPLETED"
        assert int(rows[job_id]["NCPUS"]) == workers


class _JobIgnoringItsFirstSigterm:
    """A running local job whose first SIGTERM is lost (it came before the job's handler)."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self._process = self

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)

    def done(self) -> bool:
        return len(self.signals) >= 2


def test_stopping_local_jobs_sends_sigterm_again_to_a_job_still_running():
    from hydra_plugins.a3c_exp_launchers.launchers import _stop_local_jobs

    job = _JobIgnoringItsFirstSigterm()
    _stop_local_jobs([job], poll_s=0.01, resend_s=0.05)
    assert job.signals == [signal.SIGTERM, signal.SIGTERM]
