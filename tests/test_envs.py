"""Environments: the ViZDoom env is a proper gymnasium env; gym ids go through the same factory."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from a3c_exp.config import GymEnvConfig, VizDoomEnvConfig
from a3c_exp.envs import make_env, probe_env_spec
from a3c_exp.envs.vizdoom_env import VizDoomEnv
from a3c_exp.runtime.checks import load_validated
from tests.helpers import cli_env

DOOM = VizDoomEnvConfig(
    name="doom",
    kind="vizdoom",
    scenario="basic",
    frame_skip=4,
    frame_size=84,
    crop=[10, 10, 30, 30],
    screen_resolution="RES_160X120",
    reward_scale=0.01,
)


@pytest.fixture
def doom_env(tmp_path):
    env = VizDoomEnv(workdir=tmp_path)
    yield env
    env.close()


def test_vizdoom_env_passes_gymnasium_check_env(doom_env):
    check_env(doom_env, skip_render_check=True)


def test_vizdoom_observation_and_actions_follow_the_tutorial(doom_env):
    assert doom_env.observation_space.shape == (1, 84, 84)
    assert doom_env.observation_space.dtype == np.uint8
    assert doom_env.button_names == ["MOVE_LEFT", "MOVE_RIGHT", "ATTACK"]
    obs, _ = doom_env.reset(seed=1)
    assert obs.shape == (1, 84, 84) and obs.std() > 0
    _, reward, terminated, truncated, _ = doom_env.step(0)
    # living reward -1 per tic, 4 tics per action, scaled by 1/100
    assert reward == pytest.approx(-0.04)
    assert not (terminated or truncated)


def test_vizdoom_noop_is_one_more_action_that_presses_no_button(tmp_path):
    import vizdoom as vzd

    env = VizDoomEnv(scenario="predict_position", noop=True, workdir=tmp_path)
    try:
        assert env.action_space.n == 4
        assert env.button_names == ["TURN_LEFT", "TURN_RIGHT", "ATTACK", "NOOP"]
        env.reset(seed=0)
        game = env.unwrapped.game
        env.step(0)  # a turn first: the weapon is ready from the second step on
        angle = game.get_game_variable(vzd.GameVariable.ANGLE)
        # 80 tics of no-ops: a rocket fired would have ended the episode by then (ATTACK below)
        ended = [env.step(3)[2] for _ in range(20)]
        assert not any(ended)
        assert game.get_game_variable(vzd.GameVariable.ANGLE) == angle  # the aim held
        env.step(2)
        assert any(env.step(3)[2] for _ in range(20))  # the one rocket's explosion ends it
    finally:
        env.close()


def test_vizdoom_timeout_truncates_after_300_tics(doom_env):
    doom_env.reset(seed=2)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = doom_env.step(0)  # keep moving left: never kills
        steps += 1
        assert not terminated
    assert steps == pytest.approx(300 / 4, abs=4)
    assert info["game_score"] == pytest.approx(-300, abs=5)


def test_vizdoom_files_stay_in_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "engine"
    env = make_env(DOOM, workdir=str(workdir))
    env.reset(seed=0)
    env.close()
    assert (workdir / "_vizdoom").is_dir()
    assert not (tmp_path / "_vizdoom").exists() and not (tmp_path / "_vizdoom.ini").exists()


def test_vizdoom_rgb_render_for_videos(tmp_path):
    env = VizDoomEnv(workdir=tmp_path, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    assert obs.shape == (1, 84, 84)


def test_gym_env_by_id_and_spec():
    env_cfg = GymEnvConfig(name="cartpole", kind="gym", id="CartPole-v1", reward_scale=2.0)
    env = make_env(env_cfg)
    obs, _ = env.reset(seed=0)
    _, reward, *_ = env.step(0)
    env.close()
    assert obs.dtype == np.float32 and reward == 2.0
    spec = probe_env_spec(env_cfg)
    assert spec.obs_shape == (4,) and spec.n_actions == 2


def test_vizdoom_spec(tmp_path):
    spec = probe_env_spec(DOOM, workdir=str(tmp_path))
    assert spec.obs_shape == (1, 84, 84) and spec.n_actions == 3


def test_atari_pong_preset_has_its_measured_frame_size_and_network(compose_train):
    """Pong: the paper's preprocessing at 42x42 and three 3x3 convs (conf/env/atari_pong.yaml)."""

    from a3c_exp.models import build_model

    cfg = load_validated(compose_train(["env=atari_pong"]))
    env = make_env(cfg.env)
    try:
        assert env.observation_space.shape == (4, 42, 42)
        assert env.observation_space.dtype == np.uint8
        assert env.action_space.n == 6
        net = build_model(cfg.model, env.observation_space.shape, env.action_space.n)
        convs = [c for c in net.encoder.convs if isinstance(c, torch.nn.Conv2d)]
        shapes = [(c.out_channels, c.kernel_size, c.stride) for c in convs]
        assert shapes == [(32, (3, 3), (2, 2))] * 3
        assert net.encoder.fc[0].in_features == 32 * 4 * 4  # 42 -> 20 -> 9 -> 4
        obs, _ = env.reset(seed=0)
        rewards = []
        for _ in range(300):  # long enough for the first points of the game
            obs, reward, *_ = env.step(env.action_space.sample())
            rewards.append(reward)
            assert obs.shape == (4, 42, 42)
        assert set(rewards) <= {-1.0, 0.0, 1.0} and -1.0 in rewards
    finally:
        env.close()


def test_generic_atari_preset_has_the_papers_preprocessing_and_network(compose_train):

    from a3c_exp.models import build_model

    cfg = load_validated(compose_train(["env=atari"]))
    spec = probe_env_spec(cfg.env)
    assert spec.obs_shape == (4, 84, 84)
    net = build_model(cfg.model, spec.obs_shape, spec.n_actions)
    assert [c.out_channels for c in net.encoder.convs if hasattr(c, "out_channels")] == [16, 32]
    assert net.encoder.fc[0].out_features == 256


def test_generic_atari_env_takes_any_ale_id(compose_train):

    cfg = load_validated(compose_train(["env=atari", "env.id=ALE/Breakout-v5"]))
    spec = probe_env_spec(cfg.env)
    assert spec.obs_shape == (4, 84, 84) and spec.n_actions == 4


def test_rendering_a_gym_env_for_video_prints_no_display_error(tmp_path):
    # pygame's SDL looked for a display and printed "error: XDG_RUNTIME_DIR is invalid ..."
    code = (
        "from a3c_exp.config import GymEnvConfig; from a3c_exp.envs import make_env; "
        "env = make_env(GymEnvConfig(name='c', kind='gym', id='CartPole-v1'), "
        "render_mode='rgb_array'); env.reset(seed=0); print(env.render().shape); env.close()"
    )
    env = {k: v for k, v in cli_env().items() if k not in ("XDG_RUNTIME_DIR", "SDL_VIDEODRIVER")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(400, 600, 3)"
    assert result.stderr.strip() == ""
