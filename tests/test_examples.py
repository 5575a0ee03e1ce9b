"""Each example of ``examples/`` run as its README says, from a copy outside the repository,
for a small budget: it trains (finite losses, a checkpoint) and its checkpoint evaluates."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli_env, read_metrics

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BUDGET = ["total_steps=1200", "checkpoint_every=0", "video_every=0", "workers=1", "log_every=1"]
DOOM_BUDGET = [*BUDGET, "envs_per_worker=2"]


def readme_commands(readme: Path) -> list[str]:
    """The shell commands of a README's ``bash`` blocks, one per line."""
    blocks = re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def run_command(command: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run a README's ``VAR=value python -m ...`` line in ``cwd`` with ``extra`` arguments."""
    words = shlex.split(command)
    env = cli_env()
    while "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        value = str((cwd / value).resolve()) if name == "PYTHONPATH" else value
        env[name] = os.pathsep.join([value, env.get(name, "")]) if name == "PYTHONPATH" else value
    assert words[0] == "python", command
    return subprocess.run(
        [sys.executable, *words[1:], *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy(name: str, tmp_path: Path) -> Path:
    """The example, copied outside the repository: it must not need anything of it."""
    folder = tmp_path / name
    shutil.copytree(EXAMPLES / name, folder)
    return folder


def _trained(result: subprocess.CompletedProcess, run_dir: Path, *keys: str) -> list[dict]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    rows = read_metrics(run_dir)
    assert rows and int(rows[-1]["global_step"]) >= 1200
    for key in ("Losses/Value Loss", "Losses/Policy Loss", *keys):
        values = [float(r[key]) for r in rows if r.get(key)]
        assert values and all(math.isfinite(v) for v in values), key
    return rows


def test_custom_network_trains_and_evaluates_when_its_package_is_trusted(tmp_path):
    folder = _copy("custom_network", tmp_path)
    train, evaluate = readme_commands(folder / "README.md")
    run_dir = folder / "outputs" / "run"
    result = run_command(train, folder, *DOOM_BUDGET, f"hydra.run.dir={run_dir}")
    _trained(result, run_dir)
    assert "my_nets.nature.NatureCNN" in (run_dir / ".hydra" / "config.yaml").read_text()
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    evaluate = evaluate.replace("outputs/<date>/<time>/checkpoints/last.ckpt", str(checkpoint))
    out = folder / "outputs" / "eval"
    result = run_command(evaluate, folder, "episodes=2", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "eval.json").read_text())["episodes"] == 2


def test_custom_env_trains_with_its_constructor_arguments(tmp_path):
    folder = _copy("custom_env", tmp_path)
    (train,) = readme_commands(folder / "README.md")
    run_dir = folder / "outputs" / "run"
    result = run_command(train, folder, *BUDGET, "env.length=6", f"hydra.run.dir={run_dir}")
    rows = _trained(result, run_dir)
    assert float(rows[-1]["Perf/Episodes"]) > 0
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "my_envs.corridor.Corridor" in config and "length: 6" in config


def test_aux_loss_trains_and_logs_its_term(tmp_path):
    folder = _copy("aux_loss", tmp_path)
    (train,) = readme_commands(folder / "README.md")
    run_dir = folder / "outputs" / "run"
    result = run_command(train, folder, *DOOM_BUDGET, f"hydra.run.dir={run_dir}")
    _trained(result, run_dir, "Aux/reward_prediction/Loss", "Aux/reward_prediction/Accuracy")
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
