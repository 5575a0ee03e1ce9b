"""Every config option composes and builds; presets compose; the config is typed and frozen;
every bad value gives its one-line error."""

import dataclasses
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from a3c_exp.config import (
    ConfigError,
    ConvLSTMConfig,
    EnvConfig,
    RMSpropConfig,
    TrainConfig,
    as_plain_data,
)
from a3c_exp.envs.factory import EnvSpec
from a3c_exp.envs.scenarios import (
    FULL_GAME_CONFIGS,
    MULTIPLAYER_SCENARIOS,
    UNSERVED_SCENARIOS,
    shipped_scenarios,
    shipped_scenarios_dir,
)
from a3c_exp.models import build_model
from a3c_exp.overrides import CONFIG_DIR, group_options, run_name
from a3c_exp.runtime.checks import load_validated
from a3c_exp.runtime.cpus import pins_cpus
from tests.helpers import cli_env


@pytest.mark.parametrize("env", group_options("env"))
def test_every_env_option_composes_and_validates(compose_train, env):
    cfg = load_validated(compose_train([f"env={env}"]))
    assert cfg.env.name == env
    assert cfg.workers >= 1


def test_every_shipped_scenario_has_an_env_config_or_a_documented_reason_not_to():
    configured = {n.removeprefix("doom_") for n in group_options("env") if n.startswith("doom")}
    configured.add("basic")  # env=doom
    assert set(shipped_scenarios()) <= configured
    every_config = {p.stem for p in shipped_scenarios_dir().glob("*.cfg")}
    single_player = every_config - MULTIPLAYER_SCENARIOS - FULL_GAME_CONFIGS
    assert single_player - configured == set(UNSERVED_SCENARIOS)
    readme = (CONFIG_DIR.parent.parent / "README.md").read_text()
    for name in UNSERVED_SCENARIOS:
        assert f"`{name}`" in readme, f"README does not say why {name} has no preset"


def _file_values(path):
    """The values a preset file sets, following its own defaults list (as Hydra would)."""
    node = OmegaConf.load(path)
    values = OmegaConf.create()
    for parent in node.pop("defaults", []):
        if isinstance(parent, str):
            values = OmegaConf.merge(values, _file_values(path.parent / f"{parent}.yaml"))
    return OmegaConf.merge(values, node)


def _expected(env, optim, key):
    """Where ``key`` (optim.lr, loss.entropy_coef) must come from: tuned/<env>_<optim>.yaml if it
    sets it, else the optimizer's or loss's own file."""
    tuned = CONFIG_DIR / "tuned" / f"{env}_{optim}.yaml"
    if tuned.exists():
        value = OmegaConf.select(_file_values(tuned), key)
        if value is not None:
            return value, tuned.name
    group, _, leaf = key.partition(".")
    own = CONFIG_DIR / group / (f"{optim}.yaml" if group == "optim" else "a3c.yaml")
    return OmegaConf.load(own)[leaf], own.name


@pytest.mark.parametrize("optim", group_options("optim"))
@pytest.mark.parametrize("env", group_options("env"))
def test_every_env_optim_pair_takes_each_value_from_its_own_file(compose_train, env, optim):
    cfg = load_validated(compose_train([f"env={env}", f"optim={optim}"]))
    assert cfg.optim.name == optim
    for key in ("optim.lr", "loss.entropy_coef"):
        value, source = _expected(env, optim, key)
        assert OmegaConf.select(OmegaConf.create(as_plain_data(cfg)), key) == value, source


def test_env_presets_set_no_optimizer_or_loss_values():
    for env in group_options("env"):
        node = OmegaConf.load(CONFIG_DIR / "env" / f"{env}.yaml")
        assert "optim" not in node and "loss" not in node, env


def test_switching_the_optimizer_drops_the_other_optimizers_tuned_rate(compose_train):
    adam = load_validated(compose_train(["env=doom"]))
    rmsprop = load_validated(compose_train(["env=doom", "optim=shared_rmsprop"]))
    assert adam.optim.lr == 4e-4
    assert isinstance(rmsprop.optim, RMSpropConfig) and rmsprop.optim.eps == 0.1
    assert rmsprop.optim.lr == _expected("doom", "shared_rmsprop", "optim.lr")[0]
    assert rmsprop.envs_per_worker == adam.envs_per_worker == 4


def test_command_line_wins_over_tuned_values(compose_train):
    cfg = load_validated(compose_train(["env=cartpole", "optim.lr=1e-3", "loss.entropy_coef=0.02"]))
    assert cfg.optim.lr == 1e-3 and cfg.loss.entropy_coef == 0.02


@pytest.mark.parametrize("model", group_options("model"))
@pytest.mark.parametrize("env", ["doom", "cartpole"])
def test_every_model_option_builds(compose_train, model, env):
    cfg = load_validated(compose_train([f"env={env}", f"model={model}"]))
    spec = EnvSpec((1, 84, 84), 3) if env == "doom" else EnvSpec((4,), 2)
    if model == "conv_lstm" and env == "cartpole":
        with pytest.raises(ValueError, match="model=mlp"):
            build_model(cfg.model, spec.obs_shape, spec.n_actions)
        return
    net = build_model(cfg.model, spec.obs_shape, spec.n_actions)
    assert net.policy_head.out_features == spec.n_actions


@pytest.mark.parametrize("optim", group_options("optim"))
def test_every_optim_option_builds_a_shared_optimizer(compose_train, optim):
    from a3c_exp.algo.module import A3CModule

    cfg = load_validated(compose_train(["env=cartpole", f"optim={optim}"]))
    module = A3CModule(as_plain_data(cfg), [4], 2)
    optimizer = module.configure_optimizers()
    states = [s for p in module.net.parameters() for s in optimizer.state[p].values()]
    assert states and all(s.is_shared() for s in states)
    assert optimizer.param_groups[0]["lr"] == cfg.optim.lr


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in ("model", "optim") for o in group_options(g)],
)
def test_every_field_of_a_network_or_optimizer_is_a_config_value(compose_train, group, option):
    """Each field of the chosen section's schema is in the composed config, so a command line
    can set it without Hydra's ``+`` (``optim.amsgrad=true``), and a field of another kind is
    refused while composing."""
    from a3c_exp.config.schema import MODEL_CONFIGS, OPTIM_CONFIGS

    registry = {"model": MODEL_CONFIGS, "optim": OPTIM_CONFIGS}[group]
    composed = compose_train(["env=cartpole", f"{group}={option}"])[group]
    assert set(composed) == _field_names(registry[option])
    other = min(set().union(*map(_field_names, registry.values())) - set(composed))
    with pytest.raises(Exception, match=other):
        compose_train(["env=cartpole", f"{group}={option}", f"{group}.{other}=1"])


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in ("logger", "experiment", "runtime") for o in group_options(g)],
)
def test_logger_experiment_and_runtime_options_compose(compose_train, group, option):
    cfg = load_validated(compose_train([f"{group}={option}"]))
    assert set(cfg.logger) <= {"wandb", "tensorboard"}
    if group == "logger":
        assert set(cfg.logger) == ({option} if option != "none" else set())
    if group == "runtime":
        assert cfg.runtime.kind == option


def test_runtime_ray_without_ray_installed_is_one_line(compose_train, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(ConfigError) as info:
        load_validated(compose_train(["runtime=ray"]))
    assert "pip install" in str(info.value) and "[ray]" in str(info.value)
    assert "\n" not in str(info.value)


def test_defaults_are_the_tutorial_with_its_measured_changes(compose_train):
    cfg = load_validated(compose_train())
    assert cfg.env.scenario == "basic" and cfg.env.reward_scale == 0.01
    assert isinstance(cfg.model, ConvLSTMConfig) and cfg.model.channels == [16, 32]
    assert cfg.loss.gamma == 0.99
    assert cfg.loss.entropy_coef == 0.01 and cfg.loss.max_grad_norm == 40.0
    assert cfg.logger["wandb"].mode == "offline" and set(cfg.logger) == {"wandb"}
    # the measured changes (docs/performance.md): 4 games per worker learn together at 4x the
    # tutorial's lr, from 42x42 frames and 10-step rollouts
    assert cfg.envs_per_worker == 4 and cfg.optim.lr == 4e-4
    assert cfg.env.frame_size == 42 and cfg.rollout_len == 10
    # every other Doom preset keeps the setup its figures were measured with
    scenario = load_validated(compose_train(["env=doom_defend_the_center"]))
    assert scenario.env.frame_size == 84 and scenario.rollout_len == 30
    # defend_the_center aims in steps of 2 tics: at basic's 4 a third of its rounds missed
    assert cfg.env.frame_skip == 4 and scenario.env.frame_skip == 2
    # the shooting scenarios' learned policies are held by the reverse pull at twice basic's rate
    line = load_validated(compose_train(["env=doom_defend_the_line"]))
    for shooter in (scenario, line):
        assert shooter.optim.lr == 8e-4 and shooter.optim.kl_target == 0.01
        assert shooter.loss.anchor_on == "policy_reverse" and shooter.loss.anchor_coef == 1.0
        assert shooter.loss.anchor_margin == 0.1 and shooter.loss.anchor_decay == 0.95
    # defend_the_line explores longer before it sharpens: a policy sure within 150 s stopped at ~17
    assert line.loss.entropy_coef == 0.03 and scenario.loss.entropy_coef == 0.01
    assert load_validated(compose_train(["env=cartpole"])).envs_per_worker == 1


def test_the_tutorial_setup_is_one_option_away(compose_train):
    cfg = load_validated(compose_train(["experiment=tutorial"]))
    assert cfg.env.scenario == "basic" and cfg.env.frame_size == 84
    assert cfg.env.crop == [10, 10, 30, 30] and cfg.env.frame_skip == 4
    assert cfg.model.channels == [16, 32] and cfg.model.kernel_sizes == [8, 4]
    assert cfg.model.strides == [4, 2] and cfg.model.fc_size == cfg.model.lstm_size == 256
    assert cfg.envs_per_worker == 4 and cfg.rollout_len == 30 and cfg.optim.lr == 4e-4


def test_env_preset_selects_its_model_but_command_line_wins(compose_train):
    assert load_validated(compose_train(["env=cartpole"])).model.name == "mlp"
    cfg = load_validated(compose_train(["env=cartpole", "model=mlp", "model.lstm_size=16"]))
    assert cfg.model.lstm_size == 16


def test_loaded_config_is_typed_and_frozen(compose_train):
    cfg = load_validated(compose_train(["env=cartpole"]))
    assert isinstance(cfg, TrainConfig) and isinstance(cfg.env, EnvConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.workers = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.env.frame_skip = 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+model._target_=shutil.copyfile", "is not a torch.nn.Module subclass; refused"),
        ("+loss._target_=os.system", "loss._target_: names code to call"),
        ("+optim._partial_=true", "optim._partial_: names code to call"),
        ("+env.kwargs._args_=[1]", "env.kwargs._args_: names code to call"),
        ("+model.lstm_sise=3", "model.lstm_sise"),
        ("model.name=transformer", "model.name='transformer': allowed: conv_lstm, mlp"),
        ("model.channels=[a,b]", "model.channels"),
    ],
)
def test_config_that_would_call_code_or_has_unknown_keys_is_refused(
    compose_train, override, message
):
    with pytest.raises(ConfigError) as info:
        load_validated(compose_train([override]))
    assert message in str(info.value) and "\n" not in str(info.value)


BAD_VALUES = [
    ("workers=0", "workers=0: must be an integer >= 1"),
    ("rollout_len=0", "rollout_len=0: must be an integer >= 1"),
    ("optim.lr=0", "optim.lr=0"),
    ("optim.lr=-1e-3", "optim.lr=-0.001"),
    ("loss.gamma=1.5", "loss.gamma=1.5: must be in (0, 1]"),
    ("loss.gamma=0", "loss.gamma=0"),
    ("loss.gae_lambda=2", "loss.gae_lambda=2"),
    ("loss.value_target=td", "loss.value_target='td': allowed: n_step, lambda"),
    ("env.scenario=nope", "env.scenario='nope': unknown scenario; allowed: basic"),
    ("env.scenario=/nonexistent/x.cfg", "does not exist"),
    ("env.frame_skip=0", "env.frame_skip=0"),
    ("max_time=-5", "max_time=-5"),
    ("runtime.start_method=fork", "runtime.start_method='fork'"),
    ("runtime.pin_cpus=sometimes", "runtime.pin_cpus='sometimes': allowed: true, false, auto"),
    ("logger.wandb.mode=sometimes", "logger.wandb.mode='sometimes'"),
    ("resume=/nonexistent.ckpt", "resume='/nonexistent.ckpt'"),
    ("total_steps=1000000.5", "total_steps=1000000.5: must be a whole number"),
    ("env.frame_size=84.5", "env.frame_size=84.5: must be a whole number"),
    ("model.channels=[16,32.5]", "model.channels[1]=32.5: must be a whole number"),
]


def test_whole_number_floats_are_taken_where_an_integer_is_asked(compose_train):
    cfg = load_validated(
        compose_train(["total_steps=1e6", "workers=2.0", "model.channels=[16.0,32]", "seed=1e1"])
    )
    assert (cfg.total_steps, cfg.workers, cfg.model.channels, cfg.seed) == (
        1_000_000,
        2,
        [16, 32],
        10,
    )
    assert all(
        type(v) is int for v in (cfg.total_steps, cfg.workers, cfg.seed, *cfg.model.channels)
    )


@pytest.mark.parametrize(("override", "message"), BAD_VALUES)
def test_bad_values_raise_one_line_errors(compose_train, override, message):
    with pytest.raises(ConfigError) as info:
        load_validated(compose_train([override]))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_wad_and_non_vizdoom_cfg_are_refused(compose_train, tmp_path):
    cfg_file = tmp_path / "mine.cfg"
    cfg_file.write_text("doom_scenario_path = missing.wad\navailable_buttons = { ATTACK }\n")
    with pytest.raises(ConfigError, match=r"missing\.wad, which is missing"):
        load_validated(compose_train([f"env.scenario={cfg_file}"]))
    other = tmp_path / "other.cfg"
    other.write_text("hello = world\n")
    with pytest.raises(ConfigError, match="not a ViZDoom config"):
        load_validated(compose_train([f"env.scenario={other}"]))


def test_run_name_from_overrides():
    name = run_name("doom", 8, ["env=doom", "workers=8", "loss.entropy_coef=0.01", "seed=3"])
    assert name == "doom-w8-ent0.01-s3"


def test_composed_config_has_no_unresolved_interpolations(compose_train):
    data = as_plain_data(load_validated(compose_train()))
    assert "${" not in OmegaConf.to_yaml(OmegaConf.create(data))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["workers=0"], "error: workers=0: must be an integer >= 1"),
        (
            ["env=nope"],
            "error: env='nope': unknown env option; allowed: atari, atari_pong, cartpole",
        ),
        (["--multirun", "env=nope,cartpole"], "error: env='nope': unknown env option; allowed:"),
        (["lossx.gamma=1"], "error: lossx.gamma=1: not a key of TrainConfig; allowed: env, "),
        (["loss.gammma=0.9"], "error: loss.gammma=0.9: not a key of LossConfig; allowed: gamma,"),
        (
            ["env=doom", "env.frame_stack=4"],
            "error: env.frame_stack=4: not a key of VizDoomEnvConfig; allowed: name, kind,",
        ),
        (
            ["env=cartpole", "env.clip_rewards=true"],
            "error: env.clip_rewards=true: not a key of GymEnvConfig; allowed: name, kind,",
        ),
        (
            ["runtime=local", "runtime.address=auto"],
            "error: runtime.address=auto: not a key of LocalRuntimeConfig; allowed: kind, "
            "start_method, pin_cpus, worker_cpus, lock_optimizer_step",
        ),
        (["workers=abc"], "error: workers='abc': must be an integer"),
        (["total_steps=2.5"], "error: total_steps=2.5: must be a whole number (an integer)"),
        (["workers=[1"], "error: workers=[1: no viable alternative at input '[1'"),
        (
            ["runtime.lock_optimizer_step=false"],
            "error: runtime.lock_optimizer_step=False: false needs",
        ),
        (
            ["runtime=ray", "runtime.pin_cpus=true"],
            "error: runtime.pin_cpus=true: not a key of RayRuntimeConfig; allowed: kind, address",
        ),
        (["loss.gamma=1.5"], "error: loss.gamma=1.5: must be in (0, 1]"),
        (["env.scenario=nope"], "error: env.scenario='nope': unknown scenario"),
        (["model.strides=[2]"], "error: model.strides=[2]: must be 2 integers >= 1, one per conv"),
        (["env=atari", "env.frame_size=0"], "error: env.frame_size=0: must be an integer >= 1"),
        (
            ["env=atari_pong", "env.frame_size=6"],
            "error: env.frame_size=6: must be >= 15: the conv stack (model.kernel_sizes=[3, 3, 3], "
            "model.strides=[2, 2, 2]) needs frames of at least 15x15",
        ),
    ],
)
def test_cli_rejects_bad_values_in_one_line_before_any_worker(tmp_path, args, expected):
    line = _refused_in_one_line(tmp_path, *args)
    assert line.startswith(expected), line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_key_that_moved_into_the_runtime_section_names_its_new_place(tmp_path):
    line = _refused_in_one_line(tmp_path, "pin_cpus=true")
    assert line.startswith("error: pin_cpus=true: not a key of TrainConfig")
    assert line.endswith("(it is runtime.pin_cpus now)")


def _refused_in_one_line(tmp_path, *args: str) -> str:
    """Run the training command with ``args``; assert it exits 2 with one line; that line."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "a3c_exp.train",
            *args,
            f"hydra.run.dir={tmp_path}/run",
            f"hydra.sweep.dir={tmp_path}/run",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("setting", "workers", "expected"),
    [("auto", 2, True), ("auto", 8, True), ("auto", 1, False), (True, 1, True), (False, 8, False)],
)
def test_workers_are_pinned_when_they_fill_the_machine(setting, workers, expected):
    assert pins_cpus(setting, workers, cpus=2) is expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "error: checkpoint=???: required: the checkpoint to evaluate"),
        (["checkpoint=/nonexistent.ckpt", "episodes=0"], "error: episodes=0: must be an integer"),
        (["checkpoint=/nonexistent.ckpt"], "error: checkpoint /nonexistent.ckpt: no such file"),
    ],
)
def test_evaluate_refuses_bad_input_in_one_line(tmp_path, args, expected):
    result = subprocess.run(
        [sys.executable, "-m", "a3c_exp.evaluate", *args, f"hydra.run.dir={tmp_path}/eval"],
        capture_output=True,
        text=True,
        timeout=180,  # a missing file is found after torch/Lightning load (10-25 s)
        env=cli_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr


def test_the_frame_size_rule_is_the_conv_stacks_own(compose_train):
    # the default conv stack (8/4, 4/2) leaves one output pixel for frames of 20x20
    assert load_validated(compose_train(["env=doom", "env.frame_size=20"])).env.frame_size == 20
    with pytest.raises(ConfigError) as info:
        load_validated(compose_train(["env=doom", "env.frame_size=19"]))
    assert str(info.value).startswith("env.frame_size=19: must be >= 20: the conv stack")
    # a network that reads no frames asks nothing of their size
    cfg = load_validated(compose_train(["env=doom", "model=mlp", "env.frame_size=8"]))
    assert cfg.model.name == "mlp" and cfg.env.frame_size == 8


VALIDATES_WITHOUT_TORCH = """
import sys
from hydra import compose, initialize_config_dir
from a3c_exp.config import ConfigError, register_configs
from a3c_exp.overrides import CONFIG_DIR
from a3c_exp.runtime.checks import load_validated
from a3c_exp.runtime.cpus import available_cpus

register_configs(cpu_count=available_cpus)
with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
    for overrides in {cases!r}:
        try:
            load_validated(compose(config_name="train", overrides=overrides))
            print("ok")
        except ConfigError as err:
            print(str(err).split(":")[0])
print("torch" in sys.modules)
"""


def test_config_is_validated_and_refused_before_torch_is_imported(tmp_path):
    cases = [
        ["env=doom"],
        ["env=atari_pong"],
        ["env=doom", "logger.wandb.mode=sometimes"],
        ["env=doom", "resume=/nonexistent.ckpt"],
        ["env=doom", "env.frame_size=10"],
    ]
    result = subprocess.run(
        [sys.executable, "-c", VALIDATES_WITHOUT_TORCH.format(cases=cases)],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "ok",
        "ok",
        "logger.wandb.mode='sometimes'",
        "resume='/nonexistent.ckpt'",
        "env.frame_size=10",
        "False",
    ]


def test_config_package_imports_nothing_else_of_a3c_exp():
    code = (
        "import sys, a3c_exp.config; "
        "print(sorted(m for m in sys.modules if m.startswith('a3c_exp.') "
        "and not m.startswith('a3c_exp.config')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert result.stdout.strip() == "[]"
