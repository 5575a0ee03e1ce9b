"""Extension points: a network, env, loss term and sink of the user's own package, named with
``_target_``; their sections checked as strictly as ours; checkpoints that name them stay data."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from a3c_exp.algo.agent import Agent, AgentSpec
from a3c_exp.algo.global_model import GlobalModel
from a3c_exp.algo.module import A3CModule, module_from_checkpoint
from a3c_exp.checkpoint import atomic_save, checkpoint_payload, load_checkpoint, take_snapshot
from a3c_exp.config import (
    ConfigError,
    FactoryEnvConfig,
    TargetConfig,
    TrustError,
    as_plain_data,
    parse_env,
    parse_model,
)
from a3c_exp.envs import make_env
from a3c_exp.models import build_model
from a3c_exp.runtime.checks import load_validated
from tests.helpers import cli_env

USER_PACKAGE = {
    "__init__.py": "",
    "nets.py": """
        import os
        import subprocess

        import torch
        from torch import nn

        from a3c_exp.models import ActorCritic


        class TinyNet(ActorCritic):
            def __init__(self, obs_shape, n_actions, hidden: int, lstm_size: int = 0):
                encoder = nn.Sequential(nn.Flatten(), nn.Linear(obs_shape[0], hidden), nn.Tanh())
                super().__init__(encoder, hidden, n_actions, lstm_size)


        class StepOnly(nn.Module):
            # the protocol's two required methods only: no forward_sequence, no encoder
            def __init__(self, obs_shape, n_actions):
                super().__init__()
                self.policy = nn.Linear(obs_shape[0], n_actions)
                self.value = nn.Linear(obs_shape[0], 1)

            def initial_state(self, batch_size=1):
                return ()

            def forward(self, obs, state):
                return self.policy(obs), self.value(obs).squeeze(-1), ()


        class WrongLogits(StepOnly):
            def forward(self, obs, state):
                return self.policy(obs)[:, :1], self.value(obs).squeeze(-1), ()


        class NotANetwork:
            def __init__(self, obs_shape, n_actions):
                pass
        """,
    "envs.py": """
        import gymnasium as gym
        import numpy as np


        class Line(gym.Env):
            def __init__(self, length: int, reward: float = 1.0):
                self.length, self.reward = length, reward
                self.observation_space = gym.spaces.Box(0, 1, (length,), np.float32)
                self.action_space = gym.spaces.Discrete(2)
                self.position = 0

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                self.position = 0
                return self._obs(), {}

            def _obs(self):
                obs = np.zeros(self.length, np.float32)
                obs[self.position] = 1
                return obs

            def step(self, action):
                self.position = min(self.length - 1, max(0, self.position + (1 if action else -1)))
                done = self.position == self.length - 1
                return self._obs(), self.reward if done else 0.0, done, False, {}


        def make_line(length: int = 3):
            return Line(length)


        def not_an_env(length: int = 3):
            return "a string"
        """,
}


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A package of the user's own, outside the repository, importable as ``my_pkg``."""
    root = tmp_path / "user"
    package = root / "my_pkg"
    package.mkdir(parents=True)
    for name, text in USER_PACKAGE.items():
        (package / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(root))
    for name in [m for m in sys.modules if m == "my_pkg" or m.startswith("my_pkg.")]:
        monkeypatch.delitem(sys.modules, name)
    return root


def _cartpole(compose_train, *overrides):
    return load_validated(compose_train(["env=cartpole", *overrides]))


def _user_env(compose_train, user_package, section, *overrides):
    """The config with ``env=mine``: a file of the user's ``conf/env/`` holding ``section``."""
    import yaml

    env_dir = user_package / "conf" / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    text = "# @package _global_\ndefaults:\n  - override /model: mlp\n"
    (env_dir / "mine.yaml").write_text(text + yaml.safe_dump({"env": section}))
    searchpath = f"hydra.searchpath=[file://{user_package / 'conf'}]"
    return load_validated(compose_train([searchpath, "env=mine", *overrides]))


# ----------------------------------------------------------------------------- networks
def test_a_users_network_is_named_by_target_and_built_with_its_keys(compose_train, user_package):
    cfg = _cartpole(
        compose_train, "~model", "+model._target_=my_pkg.nets.TinyNet", "+model.hidden=8"
    )
    assert cfg.model == TargetConfig("my_pkg.nets.TinyNet", {"hidden": 8})
    net = build_model(cfg.model, (4,), 2)
    assert type(net).__qualname__ == "TinyNet" and net.encoder[1].out_features == 8
    # stored as the user wrote it, and read back the same
    assert as_plain_data(cfg)["model"] == {"_target_": "my_pkg.nets.TinyNet", "hidden": 8}
    assert parse_model(as_plain_data(cfg)["model"]) == cfg.model


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+model.hidden=8", "+model.hiden=3"], "model.hiden: not an argument of my_pkg.nets"),
        ([], "model.hidden: required by my_pkg.nets.TinyNet (no default)"),
        (["+model.hidden=8", "+model.n_actions=3"], "model.n_actions: set by the run itself"),
    ],
)
def test_a_users_section_is_checked_against_the_signature(
    compose_train, user_package, overrides, message
):
    with pytest.raises(ConfigError) as info:
        _cartpole(compose_train, "~model", "+model._target_=my_pkg.nets.TinyNet", *overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("my_pkg.nets.Missing", "my_pkg.nets has no attribute 'Missing'"),
        ("nowhere_pkg.nets.Net", "no module 'nowhere_pkg' can be imported"),
        ("my_pkg.nets.NotANetwork", "is not a torch.nn.Module subclass"),
        ("os.system", "is not a torch.nn.Module subclass"),
        ("subprocess.Popen", "is not a torch.nn.Module subclass"),
        ("builtins.eval", "is not a torch.nn.Module subclass"),
        ("not-dotted", "must be a dotted name"),
    ],
)
def test_a_target_that_cannot_be_a_network_is_refused_before_anything_runs(
    compose_train, user_package, target, message
):
    with pytest.raises(ConfigError) as info:
        _cartpole(compose_train, "~model", f"+model._target_={target}")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_network_without_forward_sequence_or_encoder_trains_by_steps(user_package):
    from a3c_exp.models import run_sequence

    net = build_model(TargetConfig("my_pkg.nets.StepOnly"), (4,), 2)
    obs = torch.randn(5, 3, 4)
    dones = torch.zeros(5, 3, dtype=torch.bool)
    logits, values = run_sequence(net, obs, net.initial_state(3), dones)
    assert logits.shape == (5, 3, 2) and values.shape == (5, 3)
    torch.testing.assert_close(logits[2], net.policy(obs[2]))


def test_a_network_that_breaks_the_protocol_is_refused_when_built(user_package):
    with pytest.raises(ValueError, match=r"logits of shape \(2, 1\).*expected \(2, 2\)"):
        build_model(TargetConfig("my_pkg.nets.WrongLogits"), (4,), 2)


# ----------------------------------------------------------------------------- envs
@pytest.mark.parametrize("target", ["my_pkg.envs.Line", "my_pkg.envs.make_line"])
def test_a_users_env_gets_its_constructor_arguments(compose_train, user_package, target):
    section = {"_target_": target, "length": 3, "reward_scale": 2.0}
    cfg = _user_env(compose_train, user_package, section, "env.length=5")
    assert isinstance(cfg.env, FactoryEnvConfig) and cfg.env.kwargs == {"length": 5}
    assert cfg.env.reward_scale == 2.0  # the common keys are the run's
    env = make_env(cfg.env)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (5,)
        for _ in range(4):
            *_, reward, terminated, _, _ = env.step(1)
        assert terminated and reward == 2.0  # the env's 1.0, scaled by the run
    finally:
        env.close()
    assert parse_env(as_plain_data(cfg)["env"]) == cfg.env


@pytest.mark.parametrize(
    ("section", "overrides", "message"),
    [
        ({"_target_": "my_pkg.envs.Line"}, [], "env.length: required by my_pkg.envs.Line"),
        ({"_target_": "my_pkg.envs.Line"}, ["+env.lenght=3"], "env.lenght: not an argument"),
        ({"_target_": "my_pkg.nets.NotANetwork"}, [], "is not a gymnasium.Env subclass or a"),
        ({"_target_": "os.system"}, [], "is not a gymnasium.Env subclass or a function"),
    ],
)
def test_a_bad_env_section_is_refused_in_one_line(
    compose_train, user_package, section, overrides, message
):
    with pytest.raises(ConfigError) as info:
        _user_env(compose_train, user_package, section, *overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_factory_that_returns_no_env_is_refused(user_package):
    cfg = parse_env({"_target_": "my_pkg.envs.not_an_env"})
    with pytest.raises(ConfigError, match=r"returned str, not a gymnasium\.Env"):
        make_env(cfg)


# ----------------------------------------------------------------------------- trust
def _checkpoint_naming(tmp_path, model_section, env_section=None):
    """A real checkpoint of a CartPole MLP whose stored config names ``model_section``."""
    cfg = {
        "model": {"name": "mlp", "hidden_sizes": [8]},
        "optim": {"name": "shared_adam"},
        "env": env_section or {"name": "cartpole", "kind": "gym", "id": "CartPole-v1"},
    }
    module = GlobalModel(cfg, [4], 2)
    optimizer = module.configure_optimizers()
    snapshot = take_snapshot(module, optimizer, None, torch.zeros(4, dtype=torch.int64))
    payload = checkpoint_payload(module.hparams, snapshot, {"global_step": 0})
    payload["hyper_parameters"]["cfg"]["model"] = model_section
    path = tmp_path / "named.ckpt"
    atomic_save(payload, path)
    return path


@pytest.fixture
def watch_calls(monkeypatch):
    """``watch_calls()`` starts recording any call of the functions an attack would reach (after
    the checkpoint is built: building a config reads annotations with ``eval``); returns the
    list of calls seen."""
    seen: list[str] = []

    def record(name, real):
        # a call from the run's builder passes obs_shape; anything else (typing reads its
        # annotations with eval) goes to the real function
        def called(*args, **kwargs):
            if "obs_shape" in kwargs or "command" in kwargs or real is None:
                seen.append(name)
                return None
            return real(*args, **kwargs)

        # the stand-in passes for the real one: where it is defined, what it is called
        called.__module__, _, called.__qualname__ = name.rpartition(".")
        return called

    def start() -> list[str]:
        monkeypatch.setattr(os, "system", record(f"{os.system.__module__}.system", None))
        monkeypatch.setattr(builtins, "eval", record("builtins.eval", builtins.eval))
        monkeypatch.setattr(
            subprocess.Popen, "__init__", record("subprocess.Popen", subprocess.Popen.__init__)
        )
        return seen

    return start


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "subprocess.Popen"])
@pytest.mark.parametrize("trusted", [[], ["os", os.system.__module__, "builtins", "subprocess"]])
def test_a_checkpoint_naming_dangerous_code_is_refused_and_nothing_is_called(
    tmp_path, watch_calls, target, trusted
):
    path = _checkpoint_naming(tmp_path, {"_target_": target, "command": "touch pwned"})
    calls = watch_calls()
    load_checkpoint(path)  # reading the file imports and calls nothing
    with pytest.raises(ValueError) as info:
        module_from_checkpoint(path, trusted)
    message = str(info.value)
    if trusted:  # trusted or not, a target of the wrong kind is never called
        assert "is not a torch.nn.Module subclass; refused" in message
    else:
        assert f"add trusted_packages=[{target.split('.')[0]}]" in message
    assert calls == [] and "\n" not in message and str(path) in message


def test_an_alias_inside_a_trusted_package_is_refused(tmp_path, user_package, watch_calls):
    (user_package / "my_pkg" / "nets.py").write_text("import os\n")  # my_pkg.nets.os.system
    path = _checkpoint_naming(tmp_path, {"_target_": "my_pkg.nets.os.system"})
    calls = watch_calls()
    with pytest.raises(TrustError, match=r"resolves to posix\.system, defined outside"):
        module_from_checkpoint(path, ["my_pkg"])
    assert calls == []


def test_a_users_network_in_a_checkpoint_loads_only_when_its_package_is_trusted(
    tmp_path, user_package
):
    section = {"_target_": "my_pkg.nets.TinyNet", "hidden": 8}
    cfg = {"model": section, "optim": {"name": "shared_adam"}}
    module = GlobalModel(cfg, [4], 2)
    optimizer = module.configure_optimizers()
    snapshot = take_snapshot(module, optimizer, None, torch.zeros(4, dtype=torch.int64))
    path = tmp_path / "mine.ckpt"
    atomic_save(checkpoint_payload(module.hparams, snapshot, {"global_step": 0}), path)
    sys.modules.pop("my_pkg.nets", None)
    with pytest.raises(TrustError) as info:
        A3CModule.load_from_checkpoint(path)
    assert "my_pkg.nets.TinyNet" in str(info.value)
    assert "add trusted_packages=[my_pkg]" in str(info.value)
    assert "my_pkg.nets" not in sys.modules  # refused before it was imported
    loaded = A3CModule.load_from_checkpoint(path, trusted_packages=["my_pkg"])
    torch.testing.assert_close(loaded.net.state_dict(), module.net.state_dict())


def test_a_checkpoints_env_from_an_untrusted_package_is_not_imported(tmp_path, user_package):
    from a3c_exp.evaluate import play_episodes

    path = _checkpoint_naming(
        tmp_path,
        {"name": "mlp", "hidden_sizes": [8]},
        {"name": "line", "_target_": "my_pkg.envs.Line", "length": 4},
    )
    module, payload = module_from_checkpoint(path)
    env_cfg = parse_env(payload["hyper_parameters"]["cfg"]["env"])
    with pytest.raises(TrustError, match=r"add trusted_packages=\[my_pkg\]"):
        play_episodes(module, env_cfg, 1, True, 0, tmp_path, trusted={"a3c_exp"})
    assert "my_pkg.envs" not in sys.modules
    results = play_episodes(module, env_cfg, 1, True, 0, tmp_path, trusted={"a3c_exp", "my_pkg"})
    assert len(results) == 1


# ----------------------------------------------------------------------------- agent
def test_loss_terms_join_the_network_in_the_optimizer_and_the_state_dict(compose_train):
    cfg = _cartpole(compose_train, "intrinsic=icm", "intrinsic.hidden_size=16")
    spec = AgentSpec(cfg.model, cfg.intrinsic, dict(cfg.aux))
    agent = Agent(spec, (4,), 2)
    keys = list(agent.state_dict())
    assert keys[0].startswith("net.") and any(k.startswith("intrinsic.") for k in keys)
    global_model = GlobalModel(as_plain_data(cfg), [4], 2)
    optimizer = global_model.configure_optimizers()
    stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in global_model.intrinsic.parameters()} <= stepped
    assert global_model.loss_terms() == [("intrinsic", global_model.intrinsic, 10.0)]


def test_a_run_without_terms_builds_nothing_more_than_its_network(compose_train):
    cfg = _cartpole(compose_train)
    agent = GlobalModel(as_plain_data(cfg), [4], 2)
    assert agent.loss_terms() == []
    assert list(agent.state_dict()) == [f"net.{k}" for k in agent.net.state_dict()]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["intrinsic=icm", "+intrinsic.etaa=1"], "intrinsic.etaa: not an argument of a3c_exp"),
        (["intrinsic=icm", "intrinsic.weight=-1"], "intrinsic.weight=-1.0: must be >= 0"),
        (["intrinsic=icm", "intrinsic._target_=os.system"], "is not a torch.nn.Module subclass"),
    ],
)
def test_a_bad_loss_term_is_refused_in_one_line(compose_train, overrides, message):
    with pytest.raises(ConfigError) as info:
        _cartpole(compose_train, *overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_bad_sink_is_refused_in_one_line(compose_train, user_package):
    with pytest.raises(ConfigError) as info:
        _cartpole(compose_train, "+logger.mine._target_=my_pkg.nets.TinyNet")
    assert "logger.mine._target_='my_pkg.nets.TinyNet': not a sink class" in str(info.value)
    with pytest.raises(ConfigError, match=r"logger.mine: not a built-in sink"):
        _cartpole(compose_train, "+logger.mine.x=1")


def test_every_built_in_sink_takes_the_keys_of_its_section():
    import dataclasses

    from a3c_exp.config import SINK_CONFIGS
    from a3c_exp.reporting.sinks import SINKS, sink_class

    assert set(SINKS) == set(SINK_CONFIGS)
    for name, schema in SINK_CONFIGS.items():
        cls, kwargs = sink_class(name, schema())
        assert set(kwargs) == {f.name for f in dataclasses.fields(schema)}, cls


def test_the_package_folders_of_a_runs_own_classes_are_shipped_to_ray(compose_train, user_package):
    from a3c_exp.runtime.ray_pool import package_dirs, user_packages

    cfg = _cartpole(
        compose_train, "~model", "+model._target_=my_pkg.nets.TinyNet", "+model.hidden=8"
    )
    assert user_packages(cfg) == ["my_pkg"]
    assert package_dirs(["my_pkg"]) == [str(user_package / "my_pkg")]
    assert user_packages(_cartpole(compose_train, "intrinsic=icm")) == []  # ours is installed


def test_evaluate_refuses_an_untrusted_class_in_one_line_and_runs_when_trusted(
    tmp_path, user_package
):
    section = {"_target_": "my_pkg.nets.TinyNet", "hidden": 8}
    cfg = {
        "model": section,
        "optim": {"name": "shared_adam"},
        "env": {"name": "cartpole", "kind": "gym", "id": "CartPole-v1"},
    }
    module = GlobalModel(cfg, [4], 2)
    snapshot = take_snapshot(
        module, module.configure_optimizers(), None, torch.zeros(4, dtype=torch.int64)
    )
    path = tmp_path / "mine.ckpt"
    atomic_save(checkpoint_payload(module.hparams, snapshot, {"global_step": 0}), path)
    env = {**cli_env(), "PYTHONPATH": os.pathsep.join([str(user_package), cli_env()["PYTHONPATH"]])}
    command = [
        sys.executable,
        "-m",
        "a3c_exp.evaluate",
        f"checkpoint={path}",
        f"hydra.run.dir={tmp_path / 'eval'}",
        "episodes=2",
    ]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("error: checkpoint ")
    assert "add trusted_packages=[my_pkg]" in refused.stderr
    assert "Traceback" not in refused.stderr
    trusted = subprocess.run(
        [*command, "trusted_packages=[my_pkg]"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert trusted.returncode == 0, trusted.stderr
    assert (tmp_path / "eval" / "eval.json").is_file()


def test_a_resume_names_the_checkpoints_network_when_the_config_has_another(
    tmp_path, compose_train, user_package
):
    from a3c_exp.checkpoint import resume_state

    path = _checkpoint_naming(tmp_path, {"_target_": "my_pkg.nets.TinyNet", "hidden": 8})
    payload = load_checkpoint(path)
    cfg = _cartpole(compose_train)  # the built-in mlp
    with pytest.raises(ValueError) as info:
        resume_state(payload, cfg, str(path))
    assert "the checkpoint's network is my_pkg.nets.TinyNet, this config's is mlp" in str(
        info.value
    )
    same = _cartpole(
        compose_train, "~model", "+model._target_=my_pkg.nets.TinyNet", "+model.hidden=8"
    )
    assert resume_state(payload, same, str(path)).path == str(path)
