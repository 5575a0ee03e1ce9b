"""Worker processes import only what they use (each heavy import costs every worker memory)."""

import subprocess
import sys

from tests.helpers import cli_env

HEAVY = ("pytorch_lightning", "lightning_fabric", "wandb", "matplotlib", "rich")


def test_worker_code_imports_neither_lightning_nor_wandb():
    # what a forked or spawned worker loads: the worker module, the env module, the optimizers
    code = (
        "import sys, a3c_exp.runtime.worker, a3c_exp.envs.vizdoom_env, a3c_exp.optim; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert result.stdout.strip() == ""
