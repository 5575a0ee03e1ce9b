"""Every scenario preset composes, starts and steps with the spaces docs/scenarios.md states; the
unserved scenarios are refused with their reason; one trains through the CLI."""

import numpy as np
import pytest
import torch

from a3c_exp.config import ConfigError
from a3c_exp.envs import make_env
from a3c_exp.envs.scenarios import UNSERVED_SCENARIOS
from a3c_exp.models import build_model
from a3c_exp.overrides import group_options
from a3c_exp.runtime.checks import load_validated
from tests.helpers import read_metrics, run_train

DOOM_ENVS = [name for name in group_options("env") if name.startswith("doom")]

# preset: (observation shape, buttons) as the "Presets" table of docs/scenarios.md states them
SPACES = {
    "doom": ((1, 42, 42), ["MOVE_LEFT", "MOVE_RIGHT", "ATTACK"]),
    "doom_defend_the_center": ((1, 84, 84), ["TURN_LEFT", "TURN_RIGHT", "ATTACK"]),
    "doom_defend_the_line": ((1, 84, 84), ["TURN_LEFT", "TURN_RIGHT", "ATTACK"]),
    "doom_health_gathering": ((2, 84, 84), ["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD"]),
    "doom_health_gathering_supreme": ((4, 84, 84), ["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD"]),
    "doom_take_cover": ((1, 84, 84), ["MOVE_LEFT", "MOVE_RIGHT"]),
    "doom_deadly_corridor": (
        (1, 84, 84),
        [
            "MOVE_LEFT",
            "MOVE_RIGHT",
            "ATTACK",
            "MOVE_FORWARD",
            "MOVE_BACKWARD",
            "TURN_LEFT",
            "TURN_RIGHT",
        ],
    ),
    "doom_my_way_home": (
        (1, 42, 42),
        ["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD", "MOVE_LEFT", "MOVE_RIGHT"],
    ),
    "doom_predict_position": ((1, 84, 84), ["TURN_LEFT", "TURN_RIGHT", "ATTACK", "NOOP"]),
    "doom_rocket_basic": ((1, 84, 84), ["MOVE_LEFT", "MOVE_RIGHT", "ATTACK"]),
}


def test_every_doom_preset_has_its_spaces_stated():
    assert sorted(SPACES) == sorted(DOOM_ENVS)


@pytest.mark.parametrize("env_name", DOOM_ENVS)
def test_scenario_preset_composes_starts_and_steps_with_its_spaces(
    compose_train, env_name, tmp_path
):
    cfg = load_validated(compose_train([f"env={env_name}"]))
    shape, buttons = SPACES[env_name]
    env = make_env(cfg.env, workdir=str(tmp_path))
    try:
        assert env.observation_space.shape == shape and env.button_names == buttons
        assert env.action_space.n == len(buttons)
        net = build_model(cfg.model, shape, len(buttons))
        obs, _ = env.reset(seed=0)
        for step in range(5):
            assert obs.shape == shape and obs.dtype == np.uint8
            logits, _, _ = net(torch.as_tensor(obs).unsqueeze(0), net.initial_state(1))
            assert logits.shape == (1, len(buttons))
            obs, reward, terminated, truncated, _ = env.step(step % env.action_space.n)
            assert isinstance(reward, float)
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()


def test_game_variables_ride_in_the_last_channel(compose_train, tmp_path):
    cfg = load_validated(compose_train(["env=doom_health_gathering"]))
    env = make_env(cfg.env, workdir=str(tmp_path))
    try:
        import vizdoom

        obs, _ = env.reset(seed=0)
        first = int(obs[-1].reshape(-1)[0])
        assert first == env.game.get_game_variable(vizdoom.GameVariable.HEALTH) > 50
        assert not obs[-1].reshape(-1)[1:].any()
        for _ in range(40):  # the acid floor drains health
            obs, *_ = env.step(0)
        assert 0 < obs[-1].reshape(-1)[0] < first
    finally:
        env.close()


def test_reward_shaping_charges_each_bullet_and_reports_the_game_reward(compose_train, tmp_path):
    cfg = load_validated(
        compose_train(["env=doom_defend_the_center", "+env.reward_shaping.AMMO2=0.1"])
    )
    env = make_env(cfg.env, workdir=str(tmp_path))
    try:
        import vizdoom

        env.reset(seed=0)
        ammo = env.game.get_game_variable(vizdoom.GameVariable.AMMO2)
        learned = reported = 0.0
        for _ in range(40):  # ATTACK (the third button) all along
            _, reward, terminated, truncated, info = env.step(2)
            learned += reward
            reported += info["score_reward"]
        spent = ammo - env.game.get_game_variable(vizdoom.GameVariable.AMMO2)
        assert spent >= 5 and not (terminated or truncated)
        assert reported == env.game.get_total_reward() * cfg.env.reward_scale
        assert learned == pytest.approx(reported - 0.1 * spent * cfg.env.reward_scale)
    finally:
        env.close()


def test_evaluation_adds_up_the_game_reward_whatever_the_shaping(compose_train, tmp_path):
    from types import SimpleNamespace

    from a3c_exp.evaluate import play_episodes

    totals = []
    for shaping in ([], ["+env.reward_shaping.AMMO2=1.0"]):
        cfg = load_validated(compose_train(["env=doom_defend_the_center", *shaping]))
        torch.manual_seed(0)
        net = build_model(cfg.model, (1, 84, 84), 3)  # fires about a third of the time
        module = SimpleNamespace(net=net)
        (episode,) = play_episodes(module, cfg.env, 1, False, 0, tmp_path, max_steps=100)
        totals.append(episode["reward"])
    assert totals[0] == totals[1]


def test_a_conv_preset_takes_elu_and_refuses_an_unknown_activation(compose_train):
    cfg = load_validated(compose_train(["env=doom_defend_the_center", "model.activation=elu"]))
    net = build_model(cfg.model, (1, 84, 84), 3)
    assert isinstance(net.encoder.fc[1], torch.nn.ELU)
    with pytest.raises(ConfigError, match=r"model\.activation='swish': allowed: tanh, relu, elu"):
        load_validated(compose_train(["env=doom", "model.activation=swish"]))


def test_reward_shaping_takes_game_variable_names_only(compose_train):
    with pytest.raises(ConfigError, match=r"env\.reward_shaping=\{'AMMO': 0\.1\}: keys must be"):
        load_validated(compose_train(["env=doom", "+env.reward_shaping.AMMO=0.1"]))


def test_rgb_frames_have_three_colour_channels(compose_train, tmp_path):
    cfg = load_validated(compose_train(["env=doom_health_gathering_supreme"]))
    env = make_env(cfg.env, workdir=str(tmp_path))
    try:
        obs, _ = env.reset(seed=0)
        colour = obs[:3].astype(int)
        assert (colour[0] != colour[1]).any() or (colour[1] != colour[2]).any()
    finally:
        env.close()


def test_model_must_read_as_many_game_variables_as_the_env_feeds(compose_train):
    with pytest.raises(ConfigError, match=r"model\.game_variables=0: must equal"):
        load_validated(compose_train(["env=doom_health_gathering", "model.game_variables=0"]))
    with pytest.raises(ConfigError, match=r"env\.game_variables"):
        load_validated(compose_train(["env=doom", "env.game_variables=[HEALTHY]"]))


@pytest.mark.parametrize("name", sorted(UNSERVED_SCENARIOS))
def test_unserved_scenarios_are_refused_with_the_reason(compose_train, name):
    with pytest.raises(ConfigError, match=rf"env\.scenario='{name}': not served: "):
        load_validated(compose_train(["env=doom", f"env.scenario={name}"]))


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
