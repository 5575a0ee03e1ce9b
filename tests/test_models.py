"""Networks: shapes, and the batched learning pass equals the step-by-step pass."""

import pytest
import torch

from a3c_exp.models import ConvLSTMActorCritic, MLPActorCritic


def step_by_step(net, obs, state, dones):
    """Reference: forward one step at a time, zeroing the state after each episode end."""
    logits, values = [], []
    for t in range(obs.shape[0]):
        step_logits, value, state = net(obs[t : t + 1], state)
        logits.append(step_logits[0])
        values.append(value[0])
        if dones[t]:
            state = net.initial_state(1)
    return torch.stack(logits), torch.stack(values)


@pytest.mark.parametrize(
    "dones",
    [
        [False] * 12,
        [False, False, True, False, False, False, False, True, False, False, False, False],
        [True, True, False, False, False, False, False, False, False, False, False, True],
    ],
)
def test_conv_lstm_sequence_matches_step_by_step(dones):
    torch.manual_seed(0)
    net = ConvLSTMActorCritic(obs_shape=[1, 84, 84], n_actions=3)
    obs = torch.randint(0, 256, (12, 1, 84, 84), dtype=torch.uint8)
    state = tuple(torch.randn_like(s) for s in net.initial_state(1))
    dones_t = torch.tensor(dones)
    ref_logits, ref_values = step_by_step(net, obs, state, dones_t)
    logits, values = net.forward_sequence(obs, state, dones_t)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, ref_values, atol=1e-5, rtol=1e-5)

    # ... and so do the gradients of any function of the outputs.
    params = list(net.parameters())
    ref_grads = torch.autograd.grad((ref_logits.sum() + ref_values.pow(2).sum()), params)
    grads = torch.autograd.grad((logits.sum() + values.pow(2).sum()), params)
    for ref, got in zip(ref_grads, grads, strict=True):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)


def test_state_reset_at_episode_end_changes_outputs():
    torch.manual_seed(0)
    net = MLPActorCritic(obs_shape=[4], n_actions=2, lstm_size=8)
    obs = torch.randn(6, 4)
    state = tuple(torch.randn_like(s) for s in net.initial_state(1))
    _, with_reset = net.forward_sequence(obs, state, torch.tensor([0, 0, 1, 0, 0, 0]).bool())
    _, no_reset = net.forward_sequence(obs, state, torch.zeros(6, dtype=torch.bool))
    torch.testing.assert_close(with_reset[:3], no_reset[:3])
    assert not torch.allclose(with_reset[3:], no_reset[3:])


def test_mlp_without_lstm_is_stateless():
    net = MLPActorCritic(obs_shape=[4], n_actions=2)
    assert net.initial_state(1) == ()
    logits, value, state = net(torch.zeros(5, 4), ())
    assert logits.shape == (5, 2) and value.shape == (5,) and state == ()


def test_conv_lstm_refuses_vector_observations():
    with pytest.raises(ValueError, match="model=mlp"):
        ConvLSTMActorCritic(obs_shape=[4], n_actions=2)


def test_first_policy_is_near_uniform():
    net = ConvLSTMActorCritic(obs_shape=[1, 84, 84], n_actions=3)
    logits, _, _ = net(
        torch.randint(0, 256, (4, 1, 84, 84), dtype=torch.uint8), net.initial_state(4)
    )
    probs = logits.softmax(-1)
    assert torch.allclose(probs, torch.full_like(probs, 1 / 3), atol=0.02)
