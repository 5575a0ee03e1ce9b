"""The loss-term hook and the ICM built on it: bonus before the returns, losses by hand, and
gradients that stay where they belong."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from a3c_exp.algo.icm import ICM
from a3c_exp.algo.learning import rollout_loss
from a3c_exp.algo.losses import a3c_loss
from a3c_exp.algo.rollout import Rollout, RolloutCollector
from a3c_exp.algo.terms import LossTerm, NetOutputs, TermResult
from a3c_exp.config import LossConfig
from a3c_exp.models import ConvLSTMActorCritic, MLPActorCritic


def _rollout(steps=5, envs=2, shape=(1, 42, 42), n_actions=3, seed=0) -> Rollout:
    generator = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, 256, (steps + 1, envs, *shape), generator=generator, dtype=torch.uint8)
    dones = torch.zeros(steps, envs, dtype=torch.bool)
    dones[2, 0] = True
    return Rollout(
        obs=obs[:-1].clone(),
        actions=torch.randint(0, n_actions, (steps, envs), generator=generator),
        rewards=torch.randn(steps, envs, generator=generator),
        dones=dones,
        initial_state=(torch.zeros(1, envs, 16), torch.zeros(1, envs, 16)),
        bootstrap_values=torch.randn(envs, generator=generator),
        next_obs=obs[1:].clone(),
    )


def test_icm_bonus_and_loss_are_the_papers_formulas():
    torch.manual_seed(0)
    icm = ICM((1, 42, 42), 3, forward_loss_weight=0.2, reward_scale=0.01, hidden_size=32)
    rollout = _rollout()
    result = icm(rollout, NetOutputs(torch.zeros(5, 2, 3), torch.zeros(5, 2)))
    # by hand, from the module's own parts
    phi = icm.encoder(rollout.obs.flatten(0, 1).float() / 255)
    phi_next = icm.encoder(rollout.next_obs.flatten(0, 1).float() / 255)
    assert phi.shape[1] == 288  # 4 convs of 32 filters, stride 2, on 42x42: 3 x 3 x 32
    actions = rollout.actions.flatten()
    predicted = icm.forward_model(torch.cat([phi, F.one_hot(actions, 3).float()], 1))
    squared = 0.5 * ((predicted - phi_next) ** 2).sum(1)
    inverse = F.cross_entropy(
        icm.inverse_model(torch.cat([phi, phi_next], 1)), actions, reduction="sum"
    )
    torch.testing.assert_close(result.intrinsic_reward, 0.01 * squared.detach().view(5, 2))
    torch.testing.assert_close(result.loss, 0.8 * inverse + 0.2 * squared.sum())
    assert result.metrics["Forward Loss"] == pytest.approx(float(squared.sum()) / 10, rel=1e-5)
    assert result.metrics["Inverse Loss"] == pytest.approx(float(inverse) / 10, rel=1e-5)
    assert 0.0 <= result.metrics["Inverse Accuracy"] <= 1.0


class ConstantBonus(LossTerm):
    """A term that adds 1 to every reward and costs nothing."""

    def __init__(self, obs_shape, n_actions):
        super().__init__()

    def forward(self, rollout, outputs):
        return TermResult(
            loss=outputs.values.sum() * 0.0, intrinsic_reward=torch.ones_like(rollout.rewards)
        )


def test_a_terms_bonus_is_added_to_the_rewards_before_the_returns():
    torch.manual_seed(0)
    net = MLPActorCritic((4,), 2, hidden_sizes=(8,), lstm_size=0)
    rollout = _rollout(shape=(4,), n_actions=2)
    rollout = dataclasses.replace(rollout, obs=rollout.obs.float(), initial_state=())
    loss = LossConfig()
    terms, _ = rollout_loss(net, rollout, loss, None, [("intrinsic", ConstantBonus((4,), 2), 1.0)])
    logits, values = net.forward_sequence(rollout.obs, (), rollout.dones)
    by_hand = a3c_loss(
        logits,
        values,
        rollout.actions,
        rollout.rewards + 1.0,
        rollout.dones,
        rollout.bootstrap_values,
        loss.gamma,
        loss.gae_lambda,
        loss.value_coef,
        loss.entropy_coef,
    )
    torch.testing.assert_close(terms.value_loss, by_hand.value_loss)
    torch.testing.assert_close(terms.total, by_hand.total)
    assert terms.term_metrics["Intrinsic/Reward"] == pytest.approx(1.0)


def test_icm_and_the_policy_train_on_their_own_losses_only():
    torch.manual_seed(0)
    net = ConvLSTMActorCritic((1, 42, 42), 3, lstm_size=16, fc_size=32)
    icm = ICM((1, 42, 42), 3, reward_scale=0.0, hidden_size=32)  # no bonus: same returns
    rollout = _rollout()
    loss = LossConfig()

    def gradients(terms):
        net.zero_grad(set_to_none=True)
        icm.zero_grad(set_to_none=True)
        total, _ = rollout_loss(net, rollout, loss, None, terms)
        total.total.backward()
        return [p.grad.clone() if p.grad is not None else None for p in net.parameters()], [
            p.grad.clone() if p.grad is not None else None for p in icm.parameters()
        ]

    net_alone, icm_untouched = gradients([])
    net_with, icm_grads = gradients([("intrinsic", icm, 10.0)])
    assert all(g is None for g in icm_untouched)
    for alone, with_icm in zip(net_alone, net_with, strict=True):
        torch.testing.assert_close(alone, with_icm)  # the ICM loss never reaches the policy
    icm.zero_grad(set_to_none=True)
    (10.0 * icm(rollout, NetOutputs(None, None)).loss).backward()
    for got, expected in zip(icm_grads, icm.parameters(), strict=True):
        torch.testing.assert_close(got, expected.grad)  # weighted by the term's weight


class Countdown(gym.Env):
    """Observations count down to 0 at the episode's end; a reset starts again at 9."""

    observation_space = gym.spaces.Box(0, 9, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.left = 3
        return np.array([9.0], np.float32), {}

    def step(self, action):
        self.left -= 1
        done = self.left == 0
        return np.array([float(self.left)], np.float32), 0.0, done, False, {}


def test_next_observations_end_an_episode_with_its_last_observation():
    net = MLPActorCritic((1,), 2, hidden_sizes=(4,), lstm_size=0)
    collector = RolloutCollector([Countdown()], net, rollout_len=4, seed=0, keep_next_obs=True)
    rollout = collector.collect()
    assert rollout.obs[:, 0, 0].tolist() == [9.0, 2.0, 1.0, 9.0]
    assert rollout.next_obs[:, 0, 0].tolist() == [2.0, 1.0, 0.0, 2.0]  # 0, not the reset's 9
    assert RolloutCollector([Countdown()], net, 4, seed=0).collect().next_obs is None


def test_icm_encodes_each_frame_once_and_an_episodes_last_frame_as_its_own():
    torch.manual_seed(0)
    icm = ICM((1, 42, 42), 3, hidden_size=16)
    rollout = _rollout(steps=6, envs=3)
    rollout.dones[1, 2] = True
    terminal = torch.randint(0, 256, (2, 1, 42, 42), dtype=torch.uint8)
    rollout.next_obs[2, 0], rollout.next_obs[1, 2] = terminal  # not the next step's first frame
    phi, phi_next = icm.encode_pairs(rollout)
    torch.testing.assert_close(phi, icm.encode(rollout.obs.flatten(0, 1)))
    torch.testing.assert_close(phi_next, icm.encode(rollout.next_obs.flatten(0, 1)))
