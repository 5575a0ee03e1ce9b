"""Networks: shapes, and the batched learning pass equals the step-by-step pass."""

import pytest
import torch

from a3c_exp.models import ConvLSTMActorCritic, MLPActorCritic


def step_by_step(net, obs, state, dones):
    """Reference: ``forward`` one step at a time for all envs, zeroing an env's state after its
    episode ends (what the collector does while acting)."""
    logits, values = [], []
    h, c = state
    for t in range(obs.shape[0]):
        step_logits, value, (h, c) = net(obs[t], (h, c))
        logits.append(step_logits)
        values.append(value)
        keep = (~dones[t]).float().view(1, -1, 1)
        h, c = h * keep, c * keep
    return torch.stack(logits), torch.stack(values)


def _random_dones(steps, envs, rate, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(steps, envs, generator=generator) < rate


@pytest.mark.parametrize(
    ("dones", "n_envs"),
    [
        ([False] * 12, 1),
        ([False, False, True, False, False, False, False, True, False, False, False, False], 1),
        ([True, True, False, False, False, False, False, False, False, False, False, True], 1),
        ("random-sparse", 3),
        ("random-dense", 4),
    ],
)
def test_conv_lstm_sequence_matches_step_by_step(dones, n_envs):
    torch.manual_seed(0)
    net = ConvLSTMActorCritic(obs_shape=[1, 84, 84], n_actions=3)
    if dones == "random-sparse":
        dones_t = _random_dones(12, n_envs, 0.15, seed=1)
    elif dones == "random-dense":
        dones_t = _random_dones(12, n_envs, 0.5, seed=2)
    else:
        dones_t = torch.tensor(dones).unsqueeze(1)
    obs = torch.randint(0, 256, (12, n_envs, 1, 84, 84), dtype=torch.uint8)
    state = tuple(torch.randn_like(s) for s in net.initial_state(n_envs))
    ref_logits, ref_values = step_by_step(net, obs, state, dones_t)
    logits, values = net.forward_sequence(obs, state, dones_t)
    assert logits.shape == (12, n_envs, 3) and values.shape == (12, n_envs)
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
    obs = torch.randn(6, 2, 4)
    state = tuple(torch.randn_like(s) for s in net.initial_state(2))
    dones = torch.zeros(6, 2, dtype=torch.bool)
    dones[2, 0] = True  # env 0 ends an episode after step 2; env 1 runs on
    _, with_reset = net.forward_sequence(obs, state, dones)
    _, no_reset = net.forward_sequence(obs, state, torch.zeros(6, 2, dtype=torch.bool))
    torch.testing.assert_close(with_reset[:3], no_reset[:3])
    assert not torch.allclose(with_reset[3:, 0], no_reset[3:, 0])
    # the env that did not finish is untouched by the other's reset
    torch.testing.assert_close(with_reset[:, 1], no_reset[:, 1])


def test_standardized_frames_do_not_depend_on_brightness_or_contrast():
    torch.manual_seed(0)
    net = ConvLSTMActorCritic(obs_shape=[1, 84, 84], n_actions=3)
    frame = torch.randint(20, 100, (1, 1, 84, 84))
    brighter = (frame * 2 + 30).to(torch.uint8)
    features = net.encoder(frame.to(torch.uint8))
    # std ~ 23 vs ~ 46: the eps of 1 in the variance makes the match close, not exact
    torch.testing.assert_close(net.encoder(brighter), features, atol=2e-3, rtol=2e-3)


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


def test_game_variables_are_read_from_the_last_channel_and_join_the_features():
    net = ConvLSTMActorCritic(obs_shape=[4, 84, 84], n_actions=3, game_variables=2)
    assert net.encoder.convs[0].in_channels == 3  # RGB; the 4th channel is not image
    assert net.lstm.input_size == 256 + 2
    obs = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    obs[:, -1] = 0
    obs[0, -1, 0, :2] = torch.tensor([100, 50], dtype=torch.uint8)
    features = net.encoder(obs)
    assert features.shape == (2, 258)
    assert features[0, -2:].tolist() == [1.0, 0.5] and features[1, -2:].tolist() == [0.0, 0.0]
    # the variables' channel does not reach the convs: other pixels of it change nothing
    changed = obs.clone()
    changed[:, -1, 5:] = 255
    assert torch.equal(net.encoder(changed), features)


def test_game_variables_need_an_image_channel_besides():
    with pytest.raises(ValueError, match="no image channel"):
        ConvLSTMActorCritic(obs_shape=[1, 84, 84], n_actions=3, game_variables=1)


def test_elu_units_keep_a_gradient_where_relu_units_are_dead():
    torch.manual_seed(0)
    obs = torch.randint(0, 255, (8, 1, 42, 42), dtype=torch.uint8)
    grads = {}
    for activation in ("relu", "elu"):
        torch.manual_seed(0)
        net = ConvLSTMActorCritic([1, 42, 42], 3, activation=activation)
        fc = net.encoder.fc[0]
        with torch.no_grad():
            fc.bias.fill_(-100.0)  # every fc unit below zero on every frame
        net.encoder(obs).sum().backward()
        grads[activation] = fc.weight.grad.abs().sum()
    assert grads["relu"] == 0 < grads["elu"]


def test_conv_network_refuses_an_unknown_activation():
    with pytest.raises(ValueError, match=r"model\.activation='swish': allowed: tanh, relu, elu"):
        ConvLSTMActorCritic([1, 42, 42], 3, activation="swish")


def test_layer_norm_makes_the_features_blind_to_a_shift_of_all_fc_outputs():
    obs = torch.randint(0, 255, (8, 1, 42, 42), dtype=torch.uint8)
    for layer_norm in (False, True):
        torch.manual_seed(0)
        net = ConvLSTMActorCritic([1, 42, 42], 3, layer_norm=layer_norm)
        with torch.no_grad():
            before = net.encoder(obs)
            net.encoder.fc[0].bias -= 0.5  # one step that moves every fc unit down
            after = net.encoder(obs)
        if layer_norm:
            assert torch.allclose(before, after, atol=1e-4) and (after > 0).float().mean() > 0.3
        else:
            assert (after > 0).float().mean() < (before > 0).float().mean()


def test_separate_critic_gives_the_value_its_own_trunk():
    torch.manual_seed(0)
    net = ConvLSTMActorCritic([1, 42, 42], 3, separate_critic=True)
    obs = torch.randint(0, 255, (5, 2, 1, 42, 42), dtype=torch.uint8)
    state = tuple(torch.randn_like(s) for s in net.initial_state(2))
    assert state[0].shape == (1, 2, 2 * net.lstm_size)  # both LSTMs' states, side by side
    logits, values = net.forward_sequence(obs, state, torch.zeros(5, 2, dtype=torch.bool))
    policy_side = [*net.encoder.parameters(), *net.lstm.parameters(), *net.policy_head.parameters()]
    value_side = [
        *net.critic_encoder.parameters(),
        *net.critic_lstm.parameters(),
        *net.value_head.parameters(),
    ]
    value_grads = torch.autograd.grad(values.sum(), policy_side + value_side, allow_unused=True)
    logit_grads = torch.autograd.grad(logits.sum(), policy_side + value_side, allow_unused=True)
    n = len(policy_side)
    assert all(g is None for g in value_grads[:n]) and all(g is not None for g in value_grads[n:])
    assert all(g is not None for g in logit_grads[:n]) and all(g is None for g in logit_grads[n:])


@pytest.mark.parametrize("lstm_size", [256, 0])
def test_separate_critic_sequence_matches_step_by_step(lstm_size):
    torch.manual_seed(0)
    net = ConvLSTMActorCritic([1, 42, 42], 3, lstm_size=lstm_size, separate_critic=True)
    dones = _random_dones(8, 3, 0.3, seed=3)
    obs = torch.randint(0, 256, (8, 3, 1, 42, 42), dtype=torch.uint8)
    if lstm_size:
        state = tuple(torch.randn_like(s) for s in net.initial_state(3))
        ref_logits, ref_values = step_by_step(net, obs, state, dones)
    else:
        assert net.initial_state(3) == ()
        state = ()
        ref = [net(obs[t], ()) for t in range(8)]
        ref_logits = torch.stack([r[0] for r in ref])
        ref_values = torch.stack([r[1] for r in ref])
    logits, values = net.forward_sequence(obs, state, dones)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, ref_values, atol=1e-5, rtol=1e-5)
