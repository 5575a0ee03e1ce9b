"""Every config option composes and builds; every bad value gives its one-line error."""

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from a3c_exp.config import ConfigError, pins_cpus, validate
from a3c_exp.envs.factory import EnvSpec
from a3c_exp.envs.scenarios import shipped_scenarios
from a3c_exp.models import build_model
from a3c_exp.overrides import check_group_overrides, group_options, run_name
from tests.helpers import cli_env


@pytest.mark.parametrize("env", group_options("env"))
def test_every_env_option_composes_and_validates(compose_train, env):
    cfg = compose_train([f"env={env}"])
    data = validate(cfg)
    assert data["env"]["name"] == env
    assert data["workers"] >= 1


def test_every_shipped_scenario_has_an_env_config():
    configured = {n.removeprefix("doom_") for n in group_options("env") if n.startswith("doom")}
    configured.add("basic")  # env=doom
    assert set(shipped_scenarios()) <= configured


@pytest.mark.parametrize("model", group_options("model"))
@pytest.mark.parametrize("env", ["doom", "cartpole"])
def test_every_model_option_builds(compose_train, model, env):
    data = validate(compose_train([f"env={env}", f"model={model}"]))
    spec = EnvSpec((1, 84, 84), 3) if env == "doom" else EnvSpec((4,), 2)
    if model == "conv_lstm" and env == "cartpole":
        with pytest.raises(ValueError, match="model=mlp"):
            build_model(data["model"], spec.obs_shape, spec.n_actions)
        return
    net = build_model(data["model"], spec.obs_shape, spec.n_actions)
    assert net.policy_head.out_features == spec.n_actions


@pytest.mark.parametrize("optim", group_options("optim"))
def test_every_optim_option_builds_a_shared_optimizer(compose_train, optim):
    from a3c_exp.algo.module import A3CModule

    data = validate(compose_train(["env=cartpole", f"optim={optim}"]))
    module = A3CModule(data, [4], 2)
    optimizer = module.configure_optimizers()
    states = [s for p in module.net.parameters() for s in optimizer.state[p].values()]
    assert states and all(s.is_shared() for s in states)


@pytest.mark.parametrize("option", group_options("logger") + group_options("experiment"))
def test_logger_and_experiment_options_compose(compose_train, option):
    group = "logger" if option in group_options("logger") else "experiment"
    data = validate(compose_train([f"{group}={option}"]))
    assert data["logger"]["kind"] in ("wandb", "none")


def test_defaults_are_the_tutorial(compose_train):
    data = validate(compose_train())
    assert data["env"]["scenario"] == "basic" and data["env"]["reward_scale"] == 0.01
    assert data["model"]["_target_"].endswith("ConvLSTMActorCritic")
    assert data["rollout_len"] == 30 and data["loss"]["gamma"] == 0.99
    assert data["loss"]["entropy_coef"] == 0.01 and data["loss"]["max_grad_norm"] == 40.0
    assert data["logger"]["mode"] == "offline"
    # the one deliberate change: 4 games per worker learn together, at 4x the tutorial's lr
    assert data["envs_per_worker"] == 4 and data["optim"]["lr"] == 4e-4
    assert validate(compose_train(["env=cartpole"]))["envs_per_worker"] == 1


def test_env_preset_selects_its_model_but_command_line_wins(compose_train):
    assert compose_train(["env=cartpole"]).model._target_.endswith("MLPActorCritic")
    cfg = compose_train(["env=cartpole", "model=mlp", "model.lstm_size=16"])
    assert cfg.model.lstm_size == 16


BAD_VALUES = [
    ("workers=0", "workers=0: must be an integer >= 1"),
    ("rollout_len=0", "rollout_len=0: must be an integer >= 1"),
    ("optim.lr=0", "optim.lr=0"),
    ("optim.lr=-1e-3", "optim.lr=-0.001"),
    ("loss.gamma=1.5", "loss.gamma=1.5: must be in (0, 1]"),
    ("loss.gamma=0", "loss.gamma=0"),
    ("loss.gae_lambda=2", "loss.gae_lambda=2"),
    ("env.scenario=nope", "env.scenario='nope': unknown scenario; allowed: basic"),
    ("env.scenario=/nonexistent/x.cfg", "does not exist"),
    ("env.frame_skip=0", "env.frame_skip=0"),
    ("max_time=-5", "max_time=-5"),
    ("start_method=fork", "start_method='fork'"),
    ("pin_cpus=sometimes", "pin_cpus='sometimes': allowed: true, false, auto"),
    ("logger.mode=sometimes", "logger.mode='sometimes'"),
    ("resume=/nonexistent.ckpt", "resume='/nonexistent.ckpt'"),
]


@pytest.mark.parametrize(("override", "message"), BAD_VALUES)
def test_bad_values_raise_one_line_errors(compose_train, override, message):
    with pytest.raises(ConfigError) as info:
        validate(compose_train([override]))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_wad_and_non_vizdoom_cfg_are_refused(compose_train, tmp_path):
    cfg_file = tmp_path / "mine.cfg"
    cfg_file.write_text("doom_scenario_path = missing.wad\navailable_buttons = { ATTACK }\n")
    with pytest.raises(ConfigError, match=r"missing\.wad, which is missing"):
        validate(compose_train([f"env.scenario={cfg_file}"]))
    other = tmp_path / "other.cfg"
    other.write_text("hello = world\n")
    with pytest.raises(ConfigError, match="not a ViZDoom config"):
        validate(compose_train([f"env.scenario={other}"]))


def test_unknown_group_option_is_named_with_the_allowed_ones():
    error = check_group_overrides(["env=doomz", "workers=2"])
    assert error is not None and error.startswith("env='doomz': unknown env config; allowed:")
    assert "cartpole" in error and "doom_defend_the_center" in error
    assert check_group_overrides(["env=cartpole,doom", "model=mlp"]) is None


def test_run_name_from_overrides():
    name = run_name("doom", 8, ["env=doom", "workers=8", "loss.entropy_coef=0.01", "seed=3"])
    assert name == "doom-w8-ent0.01-s3"


def test_composed_config_has_no_unresolved_interpolations(compose_train):
    data = validate(compose_train())
    assert "${" not in OmegaConf.to_yaml(OmegaConf.create(data))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["workers=0"], "error: workers=0: must be an integer >= 1"),
        (["env=nope"], "error: env='nope': unknown env config; allowed:"),
        (["loss.gamma=1.5"], "error: loss.gamma=1.5: must be in (0, 1]"),
        (["env.scenario=nope"], "error: env.scenario='nope': unknown scenario"),
    ],
)
def test_cli_rejects_bad_values_in_one_line_before_any_worker(tmp_path, args, expected):
    result = subprocess.run(
        [sys.executable, "-m", "a3c_exp.train", f"hydra.run.dir={tmp_path}/run", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("setting", "workers", "expected"),
    [("auto", 2, True), ("auto", 8, True), ("auto", 1, False), (True, 1, True), (False, 8, False)],
)
def test_workers_are_pinned_when_they_fill_the_machine(setting, workers, expected):
    assert pins_cpus(setting, workers, cpus=2) is expected
