"""Every shipped ViZDoom scenario config builds its env, steps, and trains through the CLI."""

import pytest

from a3c_exp.config import load_config
from a3c_exp.envs import make_env
from a3c_exp.overrides import group_options
from tests.helpers import read_metrics, run_train

DOOM_ENVS = [name for name in group_options("env") if name.startswith("doom")]


@pytest.mark.parametrize("env_name", DOOM_ENVS)
def test_scenario_env_starts_and_steps(compose_train, env_name, tmp_path):
    cfg = load_config(compose_train([f"env={env_name}"]))
    env = make_env(cfg.env, workdir=str(tmp_path))
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (1, 84, 84)
        for step in range(5):
            obs, reward, terminated, truncated, _ = env.step(step % env.action_space.n)
            assert obs.shape == (1, 84, 84) and isinstance(reward, float)
            if terminated or truncated:
                env.reset()
    finally:
        env.close()


@pytest.mark.slow
def test_defend_the_center_trains_with_two_workers(tmp_path):
    run_dir = tmp_path / "dtc"
    run_train(
        run_dir,
        "env=doom_defend_the_center",
        "workers=2",
        "total_steps=2000",
        "logger=none",
        "log_every=1",
        timeout=180,
    )
    rows = read_metrics(run_dir)
    assert int(rows[-1]["global_step"]) >= 2000
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
