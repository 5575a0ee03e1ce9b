"""Helpers for tests that drive the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def load_script(name: str):
    """``scripts/<name>.py`` as a module (registered in ``sys.modules``: dataclasses need it)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: offline W&B, no network, caches under the test tree."""
    env = dict(os.environ)
    env.update({"WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"})
    repo_root = str(Path(__file__).resolve().parent.parent)  # so env ids like tests.fault_envs:...
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH")) if p)
    return env


def start_as_a_terminal_job(cmd: list[str], cwd: Path) -> subprocess.Popen:
    """Start ``cmd`` as a terminal's foreground job: its own process group, Ctrl-C not ignored.

    A command started in the background by a shell without job control inherits SIGINT
    ignored, and Python then never raises KeyboardInterrupt; a suite run that way (CI in the
    background) would see a sweep ignore its Ctrl-C. A terminal's foreground job never does.
    """
    return subprocess.Popen(
        cmd,
        env=cli_env(),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def run_train(
    run_dir: Path, *overrides: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``python -m a3c_exp.train`` with ``hydra.run.dir=run_dir`` and return the result."""
    cmd = [sys.executable, "-m", "a3c_exp.train", f"hydra.run.dir={run_dir}", *overrides]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=run_dir.parent
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    """Rows of a run's ``metrics.csv`` (empty before the first report)."""
    import csv

    path = run_dir / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
