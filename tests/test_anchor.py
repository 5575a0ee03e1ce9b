"""``loss.anchor_coef``: the encoder's features are pulled toward those of a moving average of
its weights that each worker keeps from the weights it pulls (``a3c_exp.algo.anchor``)."""

import copy
import math
import threading
from dataclasses import replace

import pytest
import torch

from a3c_exp.algo.anchor import FeatureAnchor
from a3c_exp.algo.learning import rollout_loss
from a3c_exp.algo.rollout import Rollout
from a3c_exp.config import ConfigError, LossConfig
from a3c_exp.envs import EnvSpec
from a3c_exp.models import MLPActorCritic, build_model
from a3c_exp.optim.shared import build_optimizer
from a3c_exp.runtime.checks import load_validated
from a3c_exp.runtime.worker import Learner, SharedGlobalModel, worker_spec


def _flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_following_moves_the_average_its_share_of_the_way_to_the_encoder():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(3, 2)
    anchor = FeatureAnchor(encoder, decay=0.75)
    before = _flat(encoder)
    with torch.no_grad():
        for param in encoder.parameters():
            param.add_(torch.randn_like(param))
    anchor.follow(encoder)
    assert torch.allclose(_flat(anchor.encoder), 0.75 * before + 0.25 * _flat(encoder))
    assert not any(p.requires_grad for p in anchor.encoder.parameters())


def test_drift_is_half_the_squared_distance_and_moves_only_the_features():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(3, 2)
    anchor = FeatureAnchor(encoder, decay=0.9)
    inputs = torch.randn(5, 3)
    features = (encoder(inputs) + 1.0).detach().requires_grad_(True)  # 1 from the average's
    drift = anchor.drift(inputs, features)
    assert float(drift) == pytest.approx(0.5 * 5 * 2)
    drift.backward()
    assert torch.allclose(features.grad, torch.ones(5, 2))
    assert all(p.grad is None for p in anchor.encoder.parameters())


def _rollout(steps: int = 6, batch: int = 2) -> Rollout:
    generator = torch.Generator().manual_seed(1)
    return Rollout(
        obs=torch.randn(steps, batch, 4, generator=generator),
        actions=torch.randint(0, 2, (steps, batch), generator=generator),
        rewards=torch.randn(steps, batch, generator=generator),
        dones=torch.zeros(steps, batch, dtype=torch.bool),
        initial_state=(),
        bootstrap_values=torch.zeros(batch),
    )


def test_the_loss_adds_the_weighted_drift_of_the_encoder_s_features_on_the_rollout():
    torch.manual_seed(0)
    net = MLPActorCritic((4,), 2, hidden_sizes=(8,))
    average = copy.deepcopy(net.encoder)
    with torch.no_grad():
        for param in average.parameters():
            param.add_(0.3)
    anchor = FeatureAnchor(average, decay=0.9)
    rollout = _rollout()
    loss = replace(LossConfig(), anchor_coef=2.0)
    plain, _ = rollout_loss(net, rollout, loss)
    anchored, _ = rollout_loss(net, rollout, loss, anchor)
    frames = rollout.obs.flatten(0, 1)
    expected = 0.5 * (net.encoder(frames) - average(frames)).pow(2).sum()
    assert plain.feature_drift is None
    assert float(anchored.feature_drift) == pytest.approx(float(expected), rel=1e-5)
    assert float(anchored.total) == pytest.approx(float(plain.total + 2.0 * expected), rel=1e-5)
    assert not net.encoder._forward_hooks  # the pass's hook is gone afterwards


def test_a_worker_starts_its_average_at_its_first_pull_and_follows_each_pull(
    compose_train, tmp_path
):
    cfg = load_validated(
        compose_train(
            ["env=cartpole", "video_every=0", "loss.anchor_coef=1.0", "loss.anchor_decay=0.5"]
        )
    )
    spec = EnvSpec(obs_shape=(4,), n_actions=2)
    learner = Learner(worker_spec(cfg, spec, tmp_path, 0, 0, 0))
    net = build_model(cfg.model, spec.obs_shape, spec.n_actions)
    optimizer = build_optimizer(replace(cfg.optim, lr=0.05), net.parameters())
    model = SharedGlobalModel(net, optimizer, threading.Lock(), torch.zeros(4, dtype=torch.int64))
    try:
        first_pull = _flat(net.encoder)
        first = learner.update(model)
        assert first.feature_drift == pytest.approx(0.0, abs=1e-12)  # the average is the pull
        assert torch.equal(_flat(learner.anchor.encoder), first_pull)
        second_pull = _flat(net.encoder)  # after the first update's step
        second = learner.update(model)
    finally:
        learner.close()
    assert not torch.equal(first_pull, second_pull)
    assert torch.allclose(_flat(learner.anchor.encoder), 0.5 * first_pull + 0.5 * second_pull)
    assert second.feature_drift > 0


def test_without_an_anchor_weight_no_worker_keeps_an_average(compose_train, tmp_path):
    cfg = load_validated(compose_train(["env=cartpole", "video_every=0"]))
    learner = Learner(worker_spec(cfg, EnvSpec(obs_shape=(4,), n_actions=2), tmp_path, 0, 0, 0))
    net = build_model(cfg.model, (4,), 2)
    optimizer = build_optimizer(cfg.optim, net.parameters())
    model = SharedGlobalModel(net, optimizer, threading.Lock(), torch.zeros(4, dtype=torch.int64))
    try:
        update = learner.update(model)
    finally:
        learner.close()
    assert learner.anchor is None and math.isnan(update.feature_drift)


@pytest.mark.parametrize(
    ("override", "message"),
    [("loss.anchor_decay=1.0", r"loss\.anchor_decay.*\[0, 1\)"), ("loss.anchor_coef=-1", ">= 0")],
)
def test_an_anchor_setting_out_of_range_is_refused_in_one_line(compose_train, override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_validated(compose_train(["env=cartpole", override]))
    assert "\n" not in str(info.value)
