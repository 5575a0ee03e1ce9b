"""``optim.kl_target`` and ``optim.anneal_steps``: the learning rate follows each update's
measured policy change, and falls linearly to zero over the env steps learned from.

The rules (``adapt_learning_rate``), their shared state (scale, count) seen by every worker
process and kept in checkpoints, the measurement in a worker's update (``Learner``), and the
parameter server's use of them (the Ray backend).
"""

import math
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from a3c_exp.algo.agent import Agent
from a3c_exp.algo.losses import policy_change
from a3c_exp.config import AdamConfig, ConfigError, RMSpropConfig
from a3c_exp.envs import EnvSpec
from a3c_exp.optim.shared import (
    KL_LR_FACTOR,
    MIN_LR_SCALE,
    adapt_learning_rate,
    build_optimizer,
    clone_state_dict,
    load_shared_state,
)
from a3c_exp.runtime.checks import load_validated
from a3c_exp.runtime.ray_pool import ParameterServer
from a3c_exp.runtime.worker import Learner, SharedGlobalModel, agent_spec, worker_spec


def test_policy_change_is_the_mean_kl_from_old_to_new_over_states():
    old = torch.log(torch.tensor([[[0.5, 0.5]], [[0.25, 0.75]]]))  # (T=2, B=1, actions)
    new = torch.log(torch.tensor([[[0.25, 0.75]], [[0.25, 0.75]]]))
    # state 1: 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75); state 2: the same policy, 0
    expected = (0.5 * math.log(2) + 0.5 * math.log(2 / 3)) / 2
    assert float(policy_change(old, new)) == pytest.approx(expected)
    assert float(policy_change(old + 3.0, old)) == pytest.approx(0.0, abs=1e-7)  # logits' offset


def _optimizer(kl_target, config=AdamConfig, lr=0.1, anneal_steps=None, anneal_to=0.0):
    param = torch.nn.Parameter(torch.zeros(3))
    cfg = config(lr=lr, kl_target=kl_target, anneal_steps=anneal_steps, anneal_to=anneal_to)
    return build_optimizer(cfg, [param])


@pytest.mark.parametrize("config", [AdamConfig, RMSpropConfig])
def test_rate_falls_above_twice_the_target_and_rises_below_half_of_it(config):
    optimizer = _optimizer(0.01, config)
    assert adapt_learning_rate(optimizer, 0.05) == pytest.approx(0.1 / KL_LR_FACTOR)
    assert adapt_learning_rate(optimizer, 0.015) == pytest.approx(0.1 / KL_LR_FACTOR)  # near
    assert adapt_learning_rate(optimizer, math.nan) == pytest.approx(0.1 / KL_LR_FACTOR)
    assert adapt_learning_rate(optimizer, 0.021) == pytest.approx(0.1 / KL_LR_FACTOR**2)
    assert adapt_learning_rate(optimizer, 0.004) == pytest.approx(0.1 / KL_LR_FACTOR)
    for _ in range(3):  # never above the configured rate
        assert adapt_learning_rate(optimizer, 0.0) == pytest.approx(0.1)
    for _ in range(30):  # nor below its lowest scale
        rate = adapt_learning_rate(optimizer, 10.0)
    assert rate == pytest.approx(0.1 * MIN_LR_SCALE)
    assert optimizer.param_groups[0]["lr"] == rate  # what the next step uses


def test_without_a_target_the_rate_stays_the_configured_one():
    optimizer = _optimizer(None)
    assert adapt_learning_rate(optimizer, 10.0) == 0.1
    assert "lr_scale" not in optimizer.param_groups[0]


def _adapt_in_child(optimizer):
    adapt_learning_rate(optimizer, 1.0)


def test_the_rate_one_worker_process_sets_is_the_one_the_others_step_with():
    optimizer = _optimizer(0.01)
    child = mp.get_context("spawn").Process(target=_adapt_in_child, args=(optimizer,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    assert adapt_learning_rate(optimizer, math.nan) == pytest.approx(0.1 / KL_LR_FACTOR)


def test_a_checkpoint_keeps_the_rate_scale_and_a_resume_continues_it():
    optimizer = _optimizer(0.01)
    adapt_learning_rate(optimizer, 1.0)
    saved = clone_state_dict(optimizer)
    adapt_learning_rate(optimizer, 1.0)  # the saved copy does not follow the live scale
    resumed = _optimizer(0.01)
    load_shared_state(resumed, saved)
    assert adapt_learning_rate(resumed, math.nan) == pytest.approx(0.1 / KL_LR_FACTOR)


def test_a_target_that_is_not_positive_is_refused(compose_train):
    with pytest.raises(ConfigError, match=r"optim\.kl_target.*> 0") as info:
        load_validated(compose_train(["env=cartpole", "optim.kl_target=0"]))
    assert "\n" not in str(info.value)


def _learner(compose_train, run_dir, *overrides):
    cfg = load_validated(
        compose_train(["env=cartpole", "envs_per_worker=2", "video_every=0", *overrides])
    )
    spec = EnvSpec(obs_shape=(4,), n_actions=2)
    learner = Learner(worker_spec(cfg, spec, run_dir, 0, 0, 0))
    net = Agent(agent_spec(cfg), spec.obs_shape, spec.n_actions)
    optimizer = build_optimizer(replace(cfg.optim, lr=0.05), net.parameters())
    counts = torch.zeros(4, dtype=torch.int64)
    return learner, SharedGlobalModel(net, optimizer, threading.Lock(), counts)


def test_each_update_measures_the_policy_change_since_the_previous_one(compose_train, tmp_path):
    learner, model = _learner(compose_train, tmp_path, "optim.kl_target=1e-12")
    try:
        first, second, third = (learner.update(model) for _ in range(3))
    finally:
        learner.close()
    assert math.isnan(first.kl)  # nothing to compare with yet
    assert second.kl > 0 and third.kl > 0
    # each measured change far above twice the target: the rate fell by the factor each time
    assert first.learning_rate == pytest.approx(0.05)
    assert second.learning_rate == pytest.approx(0.05 / KL_LR_FACTOR)
    assert third.learning_rate == pytest.approx(0.05 / KL_LR_FACTOR**2)


def test_without_a_target_no_update_measures_the_change(compose_train, tmp_path):
    learner, model = _learner(compose_train, tmp_path)
    try:
        updates = [learner.update(model) for _ in range(2)]
    finally:
        learner.close()
    assert all(math.isnan(u.kl) and u.learning_rate == 0.05 for u in updates)


def test_the_parameter_server_adapts_the_rate_before_its_step(compose_train):
    cfg = load_validated(compose_train(["env=cartpole", "optim.kl_target=0.01"]))
    net = Agent(agent_spec(cfg), (4,), 2)
    server = ParameterServer(agent_spec(cfg), cfg.optim, (4,), 2, net.state_dict(), None, 0)
    before = server.pull()
    weights, rate = server.push(np.ones_like(before), 30, 0, 1.0)
    assert rate == pytest.approx(cfg.optim.lr / KL_LR_FACTOR)
    assert np.array_equal(weights, server.pull()) and not np.allclose(weights, before)
    _, rate = server.push(np.ones_like(before), 30, 0, math.nan)
    assert rate == pytest.approx(cfg.optim.lr / KL_LR_FACTOR)


@pytest.mark.parametrize("config", [AdamConfig, RMSpropConfig])
def test_the_anneal_lowers_the_rate_linearly_to_zero_over_the_steps_learned(config):
    optimizer = _optimizer(None, config, anneal_steps=100)
    assert adapt_learning_rate(optimizer, math.nan, 25) == pytest.approx(0.075)
    assert adapt_learning_rate(optimizer, math.nan, 25) == pytest.approx(0.05)
    assert adapt_learning_rate(optimizer, 10.0, 0) == pytest.approx(0.05)  # no KL control
    assert adapt_learning_rate(optimizer, math.nan, 75) == 0.0  # past the end: zero, not < 0
    assert optimizer.param_groups[0]["lr"] == 0.0


@pytest.mark.parametrize("config", [AdamConfig, RMSpropConfig])
def test_the_anneal_ends_at_anneal_to_of_the_rate_and_stays_there(config):
    optimizer = _optimizer(None, config, anneal_steps=100, anneal_to=0.2)
    assert adapt_learning_rate(optimizer, math.nan, 50) == pytest.approx(0.1 * 0.6)
    assert adapt_learning_rate(optimizer, math.nan, 50) == pytest.approx(0.1 * 0.2)
    assert adapt_learning_rate(optimizer, math.nan, 500) == pytest.approx(0.1 * 0.2)


def test_the_anneal_scales_the_rate_the_kl_control_sets():
    optimizer = _optimizer(0.01, anneal_steps=100)
    assert adapt_learning_rate(optimizer, 1.0, 50) == pytest.approx(0.1 / KL_LR_FACTOR * 0.5)


def test_a_checkpoint_keeps_the_anneal_count_and_a_resume_continues_it():
    optimizer = _optimizer(None, anneal_steps=100)
    adapt_learning_rate(optimizer, math.nan, 40)
    saved = clone_state_dict(optimizer)
    adapt_learning_rate(optimizer, math.nan, 40)  # the saved copy does not follow the count
    resumed = _optimizer(None, anneal_steps=100)
    load_shared_state(resumed, saved)
    assert adapt_learning_rate(resumed, math.nan, 10) == pytest.approx(0.05)


def _anneal_in_child(optimizer):
    adapt_learning_rate(optimizer, math.nan, 30)


def test_the_steps_one_worker_process_learns_from_count_for_the_others():
    optimizer = _optimizer(None, anneal_steps=100)
    child = mp.get_context("spawn").Process(target=_anneal_in_child, args=(optimizer,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    assert adapt_learning_rate(optimizer, math.nan, 20) == pytest.approx(0.05)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_anneal_steps_that_are_not_positive_are_refused(compose_train, value):
    with pytest.raises(ConfigError, match=rf"optim\.anneal_steps.*{value}.*> 0") as info:
        load_validated(compose_train(["env=cartpole", f"optim.anneal_steps={value}"]))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.anneal_steps=100", "optim.anneal_to=1.0"], r"optim\.anneal_to.*1\.0.*\[0, 1\)"),
        (["optim.anneal_steps=100", "optim.anneal_to=-0.1"], r"optim\.anneal_to.*-0\.1.*\[0, 1\)"),
        (["optim.anneal_to=0.1"], r"optim\.anneal_to.*0\.1.*only with optim\.anneal_steps"),
    ],
)
def test_an_anneal_end_out_of_range_or_without_an_anneal_is_refused(
    compose_train, overrides, message
):
    with pytest.raises(ConfigError, match=message) as info:
        load_validated(compose_train(["env=cartpole", *overrides]))
    assert "\n" not in str(info.value)


def test_each_update_steps_with_the_rate_left_after_its_own_steps(compose_train, tmp_path):
    learner, model = _learner(compose_train, tmp_path, "optim.anneal_steps=1000")
    try:
        updates = [learner.update(model) for _ in range(3)]
    finally:
        learner.close()
    learned = 0
    for update in updates:
        learned += update.steps
        assert update.learning_rate == pytest.approx(0.05 * (1 - learned / 1000))


def test_a_learner_anneals_to_the_configured_share(compose_train, tmp_path):
    learner, model = _learner(
        compose_train, tmp_path, "optim.anneal_steps=10", "optim.anneal_to=0.25"
    )
    try:
        rates = [learner.update(model).learning_rate for _ in range(2)]
    finally:
        learner.close()
    assert rates == pytest.approx([0.05 * 0.25] * 2)


def test_the_parameter_server_anneals_by_the_steps_pushed(compose_train):
    cfg = load_validated(compose_train(["env=cartpole", "optim.anneal_steps=120"]))
    net = Agent(agent_spec(cfg), (4,), 2)
    server = ParameterServer(agent_spec(cfg), cfg.optim, (4,), 2, net.state_dict(), None, 0)
    grads = np.ones_like(server.pull())
    assert server.push(grads, 30, 0)[1] == pytest.approx(cfg.optim.lr * 0.75)
    assert server.push(grads, 30, 0)[1] == pytest.approx(cfg.optim.lr * 0.5)
