"""The A3C maths against numbers computed by hand (see each test's comments)."""

import math

import pytest
import torch

from a3c_exp.algo.losses import a3c_loss, discounted_returns, gae_advantages

REWARDS = torch.tensor([1.0, 0.0, 2.0])
VALUES = torch.tensor([1.0, 2.0, 3.0])
NO_DONES = torch.tensor([False, False, False])


def test_returns_bootstrap_from_value():
    # R2 = 2 + .5*10 = 7; R1 = 0 + .5*7 = 3.5; R0 = 1 + .5*3.5 = 2.75
    returns = discounted_returns(REWARDS, NO_DONES, bootstrap_value=10.0, gamma=0.5)
    assert returns.tolist() == pytest.approx([2.75, 3.5, 7.0])


def test_returns_cut_at_episode_end():
    # done after step 1: R2 = 7 (bootstrapped); R1 = 0 (episode ends); R0 = 1 + .5*0 = 1
    dones = torch.tensor([False, True, False])
    returns = discounted_returns(REWARDS, dones, bootstrap_value=10.0, gamma=0.5)
    assert returns.tolist() == pytest.approx([1.0, 0.0, 7.0])


def test_terminal_last_step_ignores_bootstrap():
    dones = torch.tensor([False, False, True])
    returns = discounted_returns(REWARDS, dones, bootstrap_value=10.0, gamma=0.5)
    assert returns.tolist() == pytest.approx([1.5, 1.0, 2.0])


def test_gae_by_hand():
    # d2 = 2 + .5*10 - 3 = 4; d1 = 0 + .5*3 - 2 = -.5; d0 = 1 + .5*2 - 1 = 1
    # A2 = 4; A1 = -.5 + .25*4 = .5; A0 = 1 + .25*.5 = 1.125
    adv = gae_advantages(REWARDS, VALUES, NO_DONES, 10.0, gamma=0.5, gae_lambda=0.5)
    assert adv.tolist() == pytest.approx([1.125, 0.5, 4.0])


def test_gae_lambda_one_is_return_minus_value():
    adv = gae_advantages(REWARDS, VALUES, NO_DONES, 10.0, gamma=0.5, gae_lambda=1.0)
    returns = discounted_returns(REWARDS, NO_DONES, 10.0, gamma=0.5)
    assert adv.tolist() == pytest.approx((returns - VALUES).tolist())
    assert adv.tolist() == pytest.approx([1.75, 1.5, 4.0])


def test_gae_resets_at_episode_end():
    # done after step 0: d0 = 1 - 1 = 0 (no next value); A0 = 0
    dones = torch.tensor([True, False, False])
    adv = gae_advantages(REWARDS, VALUES, dones, 10.0, gamma=0.5, gae_lambda=0.5)
    assert adv.tolist() == pytest.approx([0.0, 0.5, 4.0])


def test_loss_terms_and_gradients_by_hand():
    # Uniform policy over 2 actions: log pi = -ln 2, entropy ln 2 per step.
    logits = torch.zeros(3, 2, requires_grad=True)
    values = VALUES.clone().requires_grad_(True)
    actions = torch.tensor([0, 1, 0])
    terms = a3c_loss(
        logits,
        values,
        actions,
        REWARDS,
        NO_DONES,
        10.0,
        gamma=0.5,
        gae_lambda=1.0,
        value_coef=0.5,
        entropy_coef=0.01,
    )
    # A = [1.75, 1.5, 4]: policy = ln2 * 7.25; value = .5 * (1.75^2 + 1.5^2 + 4^2) = 10.65625
    assert float(terms.policy_loss) == pytest.approx(7.25 * math.log(2))
    assert float(terms.value_loss) == pytest.approx(10.65625)
    assert float(terms.entropy) == pytest.approx(3 * math.log(2))
    expected_total = 0.5 * 10.65625 + 7.25 * math.log(2) - 0.01 * 3 * math.log(2)
    assert float(terms.total) == pytest.approx(expected_total)
    terms.total.backward()
    # d/dV_t = value_coef * (V_t - R_t); advantages carry no gradient into the values.
    assert values.grad.tolist() == pytest.approx([-0.875, -0.75, -2.0])
    # d/dlogits_t = -A_t * (onehot(a_t) - pi); the entropy term has zero gradient at uniform.
    expected = torch.tensor([[-0.875, 0.875], [0.75, -0.75], [-2.0, 2.0]])
    torch.testing.assert_close(logits.grad, expected)


def value_loss_and_grad(gae_lambda: float = 1.0, **options) -> tuple[float, list[float]]:
    """The value loss of REWARDS / VALUES (gamma .5, bootstrap 10) and its gradient on VALUES."""
    values = VALUES.clone().requires_grad_(True)
    terms = a3c_loss(
        torch.zeros(3, 2),
        values,
        torch.tensor([0, 1, 0]),
        REWARDS,
        NO_DONES,
        10.0,
        gamma=0.5,
        gae_lambda=gae_lambda,
        value_coef=1.0,
        entropy_coef=0.0,
        **options,
    )
    terms.value_loss.backward()
    return float(terms.value_loss), values.grad.tolist()


def test_huber_value_loss_caps_the_pull_of_a_large_error_and_keeps_small_ones():
    # errors R - V = [1.75, 1.5, 4] (as above); with delta 2 the first two stay squared and the
    # third is linear: 0.5*1.75^2 + 0.5*1.5^2 + 2*(4 - 1) = 1.53125 + 1.125 + 6
    loss, grad = value_loss_and_grad(huber_delta=2.0)
    assert loss == pytest.approx(8.65625)
    assert grad == pytest.approx([-1.75, -1.5, -2.0])  # the 4 pulls with 2


def test_lambda_value_target_is_advantage_plus_value_and_n_step_at_lambda_one():
    # With gamma .5 and lambda .5, A = [1.125, .5, 4] (test_gae_by_hand), so the lambda-return
    # G = A + V = [2.125, 2.5, 7] and the value loss 0.5 * sum A^2 = 0.5 * (1.265625 + .25 + 16);
    # the n-step target R = [2.75, 3.5, 7] would give 0.5 * (1.75^2 + 1.5^2 + 4^2) instead.
    loss, grad = value_loss_and_grad(0.5, value_target="lambda")
    assert loss == pytest.approx(0.5 * (1.125**2 + 0.5**2 + 4.0**2))
    assert grad == pytest.approx([-1.125, -0.5, -4.0])  # the target itself carries no gradient
    n_step_at_half = value_loss_and_grad(0.5, value_target="n_step")[0]
    assert n_step_at_half == pytest.approx(0.5 * (1.75**2 + 1.5**2 + 4.0**2))
    lambda_loss, lambda_grad = value_loss_and_grad(1.0, value_target="lambda")
    n_step_loss, n_step_grad = value_loss_and_grad(1.0, value_target="n_step")
    assert lambda_loss == pytest.approx(n_step_loss)
    assert lambda_grad == pytest.approx(n_step_grad)


def test_entropy_bonus_pushes_towards_uniform():
    logits = torch.tensor([[2.0, 0.0]], requires_grad=True)
    terms = a3c_loss(
        logits,
        torch.zeros(1),
        torch.tensor([0]),
        torch.zeros(1),
        torch.tensor([True]),
        0.0,
        0.99,
        1.0,
        0.5,
        entropy_coef=1.0,
    )
    terms.total.backward()
    # advantage is 0, so only the entropy term acts: it lowers the larger logit.
    assert logits.grad[0, 0] > 0 > logits.grad[0, 1]


def _policy_logit_grads(scale: float, normalize: bool) -> tuple[float, torch.Tensor]:
    """Policy loss and its gradient on uniform logits, with REWARDS and VALUES times ``scale``."""
    logits = torch.zeros(3, 2, requires_grad=True)
    terms = a3c_loss(
        logits,
        VALUES * scale,
        torch.tensor([0, 1, 0]),
        REWARDS * scale,
        NO_DONES,
        10.0 * scale,
        gamma=0.5,
        gae_lambda=1.0,
        value_coef=0.5,
        entropy_coef=0.0,
        normalize_advantages=normalize,
    )
    terms.policy_loss.backward()
    return float(terms.value_loss), logits.grad


def test_normalized_advantages_are_standardised_and_leave_the_value_loss_alone():
    # A = [1.75, 1.5, 4] (lambda 1): mean 29/12, sample std sqrt(((2/3)^2 + (11/12)^2 +
    # (19/12)^2) / 2); the logits' gradient is -A_hat_t * (onehot(a_t) - 0.5)
    value_loss, grad = _policy_logit_grads(1.0, normalize=True)
    advantages = torch.tensor([1.75, 1.5, 4.0])
    mean = 29 / 12
    std = math.sqrt(((1.75 - mean) ** 2 + (1.5 - mean) ** 2 + (4.0 - mean) ** 2) / 2)
    hat = (advantages - mean) / std
    expected = torch.stack([-0.5 * hat, 0.5 * hat], dim=1) * torch.tensor([[1], [-1], [1]])
    torch.testing.assert_close(grad, expected)
    assert value_loss == pytest.approx(10.65625)  # as without normalisation


def test_normalized_advantages_make_the_policy_step_independent_of_the_reward_scale():
    _, small = _policy_logit_grads(1.0, normalize=True)
    _, large = _policy_logit_grads(100.0, normalize=True)
    torch.testing.assert_close(small, large)
    _, raw_small = _policy_logit_grads(1.0, normalize=False)
    _, raw_large = _policy_logit_grads(100.0, normalize=False)
    torch.testing.assert_close(raw_large, 100.0 * raw_small)  # the tutorial's loss scales
