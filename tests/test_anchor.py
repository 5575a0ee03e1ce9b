"""``loss.anchor_coef``: the encoder's features, or the policy, are pulled toward those of a
moving average of the network's weights that each worker keeps from the weights it pulls
(``a3c_exp.algo.anchor``)."""

import copy
import math
import threading
from dataclasses import replace

import pytest
import torch

from a3c_exp.algo.agent import Agent
from a3c_exp.algo.anchor import Anchor
from a3c_exp.algo.learning import rollout_loss
from a3c_exp.algo.losses import policy_change
from a3c_exp.algo.rollout import Rollout
from a3c_exp.config import ConfigError, LossConfig
from a3c_exp.envs import EnvSpec
from a3c_exp.models import MLPActorCritic
from a3c_exp.optim.shared import build_optimizer
from a3c_exp.runtime.checks import load_validated
from a3c_exp.runtime.worker import Learner, SharedGlobalModel, agent_spec, worker_spec


def _flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_following_moves_the_average_its_share_of_the_way_to_the_network():
    torch.manual_seed(0)
    net = MLPActorCritic((3,), 2, hidden_sizes=(4,), lstm_size=5)
    anchor = Anchor(net, decay=0.75)
    before = _flat(net)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn_like(param))
    anchor.follow(net)
    assert torch.allclose(_flat(anchor.net), 0.75 * before + 0.25 * _flat(net))
    assert not any(p.requires_grad for p in anchor.net.parameters())


def test_feature_drift_is_half_the_squared_distance_and_moves_only_the_features():
    torch.manual_seed(0)
    net = MLPActorCritic((3,), 2, hidden_sizes=(2,))
    anchor = Anchor(net, decay=0.9)
    inputs = torch.randn(5, 3)
    features = (net.encoder(inputs) + 1.0).detach().requires_grad_(True)  # 1 from the average's
    drift = anchor.feature_drift(inputs, features)
    assert float(drift) == pytest.approx(0.5 * 5 * 2)
    drift.backward()
    assert torch.allclose(features.grad, torch.ones(5, 2))
    assert all(p.grad is None for p in anchor.net.parameters())


def _rollout(steps: int = 6, batch: int = 2, lstm_size: int = 6) -> Rollout:
    generator = torch.Generator().manual_seed(1)
    dones = torch.zeros(steps, batch, dtype=torch.bool)
    dones[2, 0] = True  # an episode ends inside the rollout: both networks reset env 0 there
    return Rollout(
        obs=torch.randn(steps, batch, 4, generator=generator),
        actions=torch.randint(0, 2, (steps, batch), generator=generator),
        rewards=torch.randn(steps, batch, generator=generator),
        dones=dones,
        initial_state=(
            torch.randn(1, batch, lstm_size, generator=generator),
            torch.randn(1, batch, lstm_size, generator=generator),
        ),
        bootstrap_values=torch.zeros(batch),
    )


def _expected_drift(anchor_on: str, net, average, rollout: Rollout) -> torch.Tensor:
    """The anchor term computed here from both networks, as the docs define it."""
    if anchor_on == "features":
        frames = rollout.obs.flatten(0, 1)
        return 0.5 * (net.encoder(frames) - average.encoder(frames)).pow(2).sum()
    mine, _ = net.forward_sequence(rollout.obs, rollout.initial_state, rollout.dones)
    theirs, _ = average.forward_sequence(rollout.obs, rollout.initial_state, rollout.dones)
    if anchor_on == "policy_reverse":
        return rollout.n_steps * policy_change(mine, theirs)  # KL(policy || average's)
    return rollout.n_steps * policy_change(theirs, mine)  # the mean KL over the states


def _network_and_a_distant_average() -> tuple[MLPActorCritic, MLPActorCritic]:
    """A small recurrent network, and an average whose features and policy both differ."""
    torch.manual_seed(0)
    net = MLPActorCritic((4,), 2, hidden_sizes=(8,), lstm_size=6)
    average = copy.deepcopy(net)
    with torch.no_grad():
        for param in average.parameters():
            param.add_(0.3)
        average.policy_head.weight.add_(3 * torch.randn_like(average.policy_head.weight))
    return net, average


@pytest.mark.parametrize("anchor_on", ["features", "policy", "policy_reverse"])
def test_the_loss_adds_the_weighted_distance_from_the_average_over_the_rollout(anchor_on):
    net, average = _network_and_a_distant_average()
    rollout = _rollout()
    loss = replace(LossConfig(), anchor_coef=2.0, anchor_on=anchor_on)
    plain, _ = rollout_loss(net, rollout, loss)
    anchored, _ = rollout_loss(net, rollout, loss, Anchor(average, decay=0.9))
    expected = _expected_drift(anchor_on, net, average, rollout)
    assert plain.anchor_drift is None
    assert float(expected) > 0.1
    if anchor_on == "policy_reverse":  # the directions differ here, so the test tells them apart
        forward = float(_expected_drift("policy", net, average, rollout))
        assert float(expected) != pytest.approx(forward, rel=0.05)
    assert float(anchored.anchor_drift) == pytest.approx(float(expected), rel=1e-5)
    assert float(anchored.total) == pytest.approx(float(plain.total + 2.0 * expected), rel=1e-5)
    assert not net.encoder._forward_hooks  # the features' hook is gone after the pass


@pytest.mark.parametrize("anchor_on", ["features", "policy", "policy_reverse"])
def test_the_margin_lets_a_drift_below_it_pass_and_pulls_back_only_the_excess(anchor_on):
    net, average = _network_and_a_distant_average()
    rollout = _rollout()
    per_step = float(_expected_drift(anchor_on, net, average, rollout)) / rollout.n_steps
    assert per_step > 1e-3

    def total_and_grad(margin: float) -> tuple[float, torch.Tensor]:
        net.zero_grad()
        loss = replace(LossConfig(), anchor_coef=2.0, anchor_on=anchor_on, anchor_margin=margin)
        terms, _ = rollout_loss(net, rollout, loss, Anchor(average, decay=0.9))
        terms.total.backward()
        assert float(terms.anchor_drift) == pytest.approx(per_step * rollout.n_steps, rel=1e-5)
        return float(terms.total), torch.cat([p.grad.flatten() for p in net.parameters()])

    plain, _ = rollout_loss(net, rollout, LossConfig())
    plain.total.backward()
    plain_grad = torch.cat([p.grad.flatten() for p in net.parameters()])
    above, above_grad = total_and_grad(per_step * 1.5)  # the drift is within the margin
    assert above == pytest.approx(float(plain.total), rel=1e-6)
    assert torch.allclose(above_grad, plain_grad)
    full, _ = total_and_grad(0.0)
    half, half_grad = total_and_grad(per_step / 2)  # half the drift is excess
    assert half - float(plain.total) == pytest.approx((full - float(plain.total)) / 2, rel=1e-4)
    assert not torch.allclose(half_grad, plain_grad)


@pytest.mark.parametrize("anchor_on", ["features", "policy", "policy_reverse"])
def test_a_worker_starts_its_average_at_its_first_pull_and_follows_each_pull(
    compose_train, tmp_path, anchor_on
):
    cfg = load_validated(
        compose_train(
            [
                "env=cartpole",
                "video_every=0",
                "loss.anchor_coef=1.0",
                "loss.anchor_decay=0.5",
                f"loss.anchor_on={anchor_on}",
            ]
        )
    )
    spec = EnvSpec(obs_shape=(4,), n_actions=2)
    learner = Learner(worker_spec(cfg, spec, tmp_path, 0, 0, 0))
    net = Agent(agent_spec(cfg), spec.obs_shape, spec.n_actions)
    optimizer = build_optimizer(replace(cfg.optim, lr=0.05), net.parameters())
    model = SharedGlobalModel(net, optimizer, threading.Lock(), torch.zeros(4, dtype=torch.int64))
    try:
        first_pull = _flat(net)
        first = learner.update(model)
        assert first.anchor_drift == pytest.approx(0.0, abs=1e-12)  # the average is the pull
        assert torch.equal(_flat(learner.anchor.net), first_pull)
        second_pull = _flat(net)  # after the first update's step
        second = learner.update(model)
    finally:
        learner.close()
    assert not torch.equal(first_pull, second_pull)
    assert torch.allclose(_flat(learner.anchor.net), 0.5 * first_pull + 0.5 * second_pull)
    assert second.anchor_drift > 0


def test_without_an_anchor_weight_no_worker_keeps_an_average(compose_train, tmp_path):
    cfg = load_validated(compose_train(["env=cartpole", "video_every=0"]))
    learner = Learner(worker_spec(cfg, EnvSpec(obs_shape=(4,), n_actions=2), tmp_path, 0, 0, 0))
    net = Agent(agent_spec(cfg), (4,), 2)
    optimizer = build_optimizer(cfg.optim, net.parameters())
    model = SharedGlobalModel(net, optimizer, threading.Lock(), torch.zeros(4, dtype=torch.int64))
    try:
        update = learner.update(model)
    finally:
        learner.close()
    assert learner.anchor is None and math.isnan(update.anchor_drift)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss.anchor_decay=1.0", r"loss\.anchor_decay.*\[0, 1\)"),
        ("loss.anchor_coef=-1", ">= 0"),
        ("loss.anchor_on=value", r"loss\.anchor_on.*'value'.*features, policy, policy_reverse"),
        ("loss.anchor_margin=-0.1", r"loss\.anchor_margin.*>= 0"),
    ],
)
def test_an_anchor_setting_out_of_range_is_refused_in_one_line(compose_train, override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_validated(compose_train(["env=cartpole", "loss.anchor_coef=1", override]))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "override", ["loss.anchor_on=policy", "loss.anchor_decay=0.9", "loss.anchor_margin=0.05"]
)
def test_an_anchor_setting_without_the_anchor_is_refused(compose_train, override):
    with pytest.raises(ConfigError, match=r"applies only with loss\.anchor_coef > 0"):
        load_validated(compose_train(["env=cartpole", override]))
    load_validated(compose_train(["env=cartpole", "loss.anchor_coef=0.5", override]))
