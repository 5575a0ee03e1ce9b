"""Rollout collection over several envs, and the batched learning step against step-by-step."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from a3c_exp.algo.learning import rollout_loss
from a3c_exp.algo.losses import a3c_loss
from a3c_exp.algo.rollout import MAX_VIDEO_SIDE, EpisodeRecorder, Rollout, RolloutCollector
from a3c_exp.config import LossConfig
from a3c_exp.models import ConvLSTMActorCritic, MLPActorCritic

LOSS_CFG = LossConfig(gamma=0.9, gae_lambda=0.95, value_coef=0.5, entropy_coef=0.01)


class CountingEnv(gym.Env):
    """Episodes of exactly ``length`` steps; obs = (env id, step in episode, episode count)."""

    def __init__(self, env_id: int, length: int):
        self.env_id, self.length = env_id, length
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t, self.episode = 0, 0

    def _obs(self):
        return np.array([self.env_id, self.t, self.episode], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.episode += 1
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), float(self.t), self.t >= self.length, False, {}


class ShapedEnv(CountingEnv):
    """Learns from a shaped reward (-1 a step) while the game's own reward rides in ``info``."""

    def step(self, action):
        obs, reward, terminated, truncated, _ = super().step(action)
        return obs, -1.0, terminated, truncated, {"score_reward": reward}


def test_episode_returns_report_the_game_reward_not_the_shaped_one():
    net = MLPActorCritic(obs_shape=[3], n_actions=2, hidden_sizes=[16], lstm_size=8)
    collector = RolloutCollector([ShapedEnv(0, length=3)], net, rollout_len=6, seed=0)
    rollout = collector.collect()
    assert (rollout.rewards == -1.0).all()
    assert [e["reward"] for e in collector.pop_finished_episodes()] == [6.0, 6.0]


def _reference_values(net, obs, state, dones):
    """Values from ``forward`` one step at a time, zeroing an env's state after its episode."""
    values = []
    h, c = state
    for t in range(obs.shape[0]):
        _, value, (h, c) = net(obs[t], (h, c))
        values.append(value)
        keep = (~dones[t]).float().view(1, -1, 1)
        h, c = h * keep, c * keep
    return torch.stack(values), (h, c)


def test_rollouts_run_across_episode_ends_with_per_env_masks():
    torch.manual_seed(0)
    envs = [CountingEnv(0, length=3), CountingEnv(1, length=5)]
    net = MLPActorCritic(obs_shape=[3], n_actions=2, hidden_sizes=[16], lstm_size=8)
    collector = RolloutCollector(envs, net, rollout_len=7, seed=0)

    first = collector.collect()
    assert first.obs.shape == (7, 2, 3) and first.n_steps == 14
    # env 0 ends an episode every 3 steps, env 1 every 5; the rollout goes on after each end
    assert first.dones[:, 0].tolist() == [False, False, True, False, False, True, False]
    assert first.dones[:, 1].tolist() == [False, False, False, False, True, False, False]
    assert first.rewards[:, 0].tolist() == [1, 2, 3, 1, 2, 3, 1]
    # the step after an episode end shows the reset observation of the next episode
    assert first.obs[3, 0].tolist() == [0, 0, 2] and first.obs[5, 1].tolist() == [1, 0, 2]
    finished = collector.pop_finished_episodes()
    assert sorted(e["length"] for e in finished) == [3, 3, 5]

    # the state carried into the next rollout, and V(s_T), follow the step-by-step reference
    with torch.no_grad():
        _, state = _reference_values(net, first.obs, first.initial_state, first.dones)
        expected_bootstrap = net(collector._obs, state)[1]
    second = collector.collect()
    torch.testing.assert_close(second.initial_state[0], state[0])
    torch.testing.assert_close(second.initial_state[1], state[1])
    torch.testing.assert_close(first.bootstrap_values, expected_bootstrap)


def test_bootstrap_is_zero_where_the_last_step_ended_an_episode():
    envs = [CountingEnv(0, length=4), CountingEnv(1, length=3)]
    net = MLPActorCritic(obs_shape=[3], n_actions=2, hidden_sizes=[16], lstm_size=8)
    with torch.no_grad():
        net.value_head.bias.fill_(5.0)  # so a non-zero bootstrap is far from 0
    rollout = RolloutCollector(envs, net, rollout_len=4, seed=0).collect()
    assert rollout.dones[-1].tolist() == [True, False]
    assert rollout.bootstrap_values[0] == 0.0
    assert abs(float(rollout.bootstrap_values[1])) > 1.0


@pytest.mark.parametrize("n_envs", [1, 3])
def test_batched_learning_step_equals_step_by_step(n_envs):
    """One batched pass over the rollout gives the same loss and gradients as running each env
    step by step with ``forward`` and summing the per-env losses."""
    torch.manual_seed(0)
    net = ConvLSTMActorCritic(obs_shape=[1, 84, 84], n_actions=3)
    steps = 10
    generator = torch.Generator().manual_seed(1)
    rollout = Rollout(
        obs=torch.randint(0, 256, (steps, n_envs, 1, 84, 84), dtype=torch.uint8),
        actions=torch.randint(0, 3, (steps, n_envs), generator=generator),
        rewards=torch.randn(steps, n_envs, generator=generator),
        dones=torch.rand(steps, n_envs, generator=generator) < 0.25,
        initial_state=tuple(0.1 * torch.randn(1, n_envs, 256) for _ in range(2)),
        bootstrap_values=torch.randn(n_envs, generator=generator),
    )
    params = list(net.parameters())
    batched, _ = rollout_loss(net, rollout, LOSS_CFG)
    batched_grads = torch.autograd.grad(batched.total, params)

    total = 0.0
    for b in range(n_envs):
        h, c = (s[:, b : b + 1] for s in rollout.initial_state)
        logits, values = [], []
        for t in range(steps):
            step_logits, value, (h, c) = net(rollout.obs[t, b : b + 1], (h, c))
            logits.append(step_logits[0])
            values.append(value[0])
            if rollout.dones[t, b]:
                h, c = torch.zeros_like(h), torch.zeros_like(c)
        terms = a3c_loss(
            torch.stack(logits),
            torch.stack(values),
            rollout.actions[:, b],
            rollout.rewards[:, b],
            rollout.dones[:, b],
            float(rollout.bootstrap_values[b]) * float(not rollout.dones[-1, b]),
            **{
                k: getattr(LOSS_CFG, k)
                for k in ("gamma", "gae_lambda", "value_coef", "entropy_coef")
            },
        )
        total = total + terms.total
    reference_grads = torch.autograd.grad(total, params)
    # the batched loss treats the bootstrap of a finished env as 0, like the reference
    torch.testing.assert_close(batched.total, total, atol=1e-5, rtol=1e-5)
    for got, ref in zip(batched_grads, reference_grads, strict=True):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)


class _FrameEnv(CountingEnv):
    render_mode = "rgb_array"

    def render(self):
        return np.zeros((4, 4, 3), dtype=np.uint8)


def test_recorder_records_the_first_episode_then_one_per_interval_of_wall_time(tmp_path):
    now = [0.0]
    recorder = EpisodeRecorder(_FrameEnv(0, 3), 60.0, tmp_path, "w0", fps=10, clock=lambda: now[0])
    recorded = []
    for _ in range(200):  # 200 episodes of 2 steps, 1 s apart: 2 intervals of 60 s pass
        recorder.start_episode()
        recorded.append(recorder.frames is not None)
        recorder.step()
        recorder.step()
        recorder.end_episode()
        now[0] += 1.0
    assert [i for i, r in enumerate(recorded) if r] == [0, 60, 120, 180]
    written = recorder.pop_written()
    assert len(written) == 4 and all(path.endswith(".gif") for path in written)


class _LargeFrameEnv(CountingEnv):
    render_mode = "rgb_array"

    def render(self):
        return np.arange(400 * 600 * 3, dtype=np.int64).reshape(400, 600, 3).astype(np.uint8)


def test_recorded_frames_are_subsampled_to_the_gif_size_cap(tmp_path):
    recorder = EpisodeRecorder(_LargeFrameEnv(0, 3), 60.0, tmp_path, "w0", fps=10)
    recorder.start_episode()
    recorder.step()
    assert all(max(frame.shape[:2]) <= MAX_VIDEO_SIDE for frame in recorder.frames)
    assert recorder.frames[0].shape == (200, 300, 3)  # every second pixel of 600x400
    recorder.end_episode()
    assert len(recorder.pop_written()) == 1


def test_the_learning_step_hands_every_loss_key_to_the_loss(monkeypatch):
    """Each key of ``LossConfig`` but the clip norm (the optimizer's) and the anchor's (the
    learning step adds that term itself: tests/test_anchor.py) reaches ``a3c_loss`` with its
    configured value, so a key added to the config cannot be silently ignored."""
    import dataclasses

    from a3c_exp.algo import learning

    seen = {}
    monkeypatch.setattr(learning, "a3c_loss", lambda *args, **kwargs: seen.update(kwargs))
    net = MLPActorCritic(obs_shape=[3], n_actions=2, lstm_size=0)
    rollout = Rollout(
        obs=torch.zeros(2, 1, 3),
        actions=torch.zeros(2, 1, dtype=torch.long),
        rewards=torch.zeros(2, 1),
        dones=torch.zeros(2, 1, dtype=torch.bool),
        initial_state=None,
        bootstrap_values=torch.zeros(1),
    )
    cfg = LossConfig(
        gamma=0.5,
        gae_lambda=0.25,
        value_coef=2.0,
        entropy_coef=0.125,
        huber_delta=3.0,
        value_target="lambda",
        normalize_advantages=True,
    )
    learning.rollout_loss(net, rollout, cfg)
    expected = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    for key in ("max_grad_norm", "anchor_coef", "anchor_decay", "anchor_on", "anchor_margin"):
        del expected[key]
    assert seen == expected
