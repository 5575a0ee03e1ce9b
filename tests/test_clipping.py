"""The gradient clipper: the fixed bound, and the bound relative to the recent norms."""

from __future__ import annotations

import pytest
import torch

from a3c_exp.algo.clipping import NORM_MEAN_DECAY, GradClipper


def _param_with_grad_norm(norm: float) -> torch.nn.Parameter:
    """A parameter whose gradient is (3, 4) scaled to the given norm."""
    param = torch.nn.Parameter(torch.zeros(2))
    param.grad = torch.tensor([3.0, 4.0]) * (norm / 5.0)
    return param


def _clip(clipper: GradClipper, norm: float) -> tuple[float, float]:
    """Clip one gradient of ``norm``; return (norm reported, norm after clipping)."""
    param = _param_with_grad_norm(norm)
    reported = clipper.clip([param])
    return reported, float(param.grad.norm())


def test_fixed_bound_only_without_ratio():
    clipper = GradClipper(max_norm=40.0)
    for _ in range(50):
        _clip(clipper, 2.0)
    reported, after = _clip(clipper, 100.0)
    assert reported == pytest.approx(100.0)
    assert after == pytest.approx(40.0, rel=1e-4)
    assert clipper.mean_norm is None


def test_a_surprise_after_a_calm_stretch_is_bounded_to_ratio_times_the_calm_norm():
    clipper = GradClipper(max_norm=40.0, ratio=3.0)
    for _ in range(200):
        assert _clip(clipper, 2.0) == pytest.approx((2.0, 2.0), rel=1e-4)
    reported, after = _clip(clipper, 100.0)
    assert reported == pytest.approx(100.0)  # the log keeps the norm as computed
    assert after == pytest.approx(6.0, rel=1e-3)
    # the running mean takes in the clipped norm, not the surprise
    assert clipper.mean_norm == pytest.approx(NORM_MEAN_DECAY * 2.0 + (1 - NORM_MEAN_DECAY) * 6.0)


def test_the_bound_follows_norms_that_grow_while_learning():
    clipper = GradClipper(max_norm=40.0, ratio=3.0)
    _clip(clipper, 2.0)
    for _ in range(300):
        _clip(clipper, 30.0)
    assert clipper.bound() == pytest.approx(40.0)
    assert _clip(clipper, 30.0)[1] == pytest.approx(30.0, rel=1e-4)


def test_a_non_finite_norm_leaves_the_running_mean_alone():
    clipper = GradClipper(max_norm=40.0, ratio=3.0)
    _clip(clipper, 2.0)
    reported, _ = _clip(clipper, float("nan"))
    assert reported != reported
    assert clipper.mean_norm == pytest.approx(2.0)


class _RecordingModel:
    """A global side that keeps the norm of the gradients handed to it."""

    def __init__(self):
        self.handed_norms: list[float] = []

    def pull(self, local):
        pass

    def hand_over(self, local):
        grads = [p.grad for p in local.parameters() if p.grad is not None]
        self.handed_norms.append(float(torch.nn.utils.get_total_norm(grads)))

    def step(self, steps, episodes):
        pass

    def skip(self, steps, episodes):
        pass


def test_a_learner_hands_over_gradients_clipped_to_the_relative_bound(compose_train, tmp_path):
    from a3c_exp.envs import EnvSpec
    from a3c_exp.runtime.checks import load_validated
    from a3c_exp.runtime.worker import Learner, worker_spec

    cfg = load_validated(
        compose_train(["env=cartpole", "envs_per_worker=1", "loss.relative_grad_clip=2"])
    )
    learner = Learner(worker_spec(cfg, EnvSpec(obs_shape=(4,), n_actions=2), tmp_path, 0, 0, 0))
    try:
        model = _RecordingModel()
        learner.clipper.mean_norm = 1e-4  # as after a stretch of tiny gradients
        update = learner.update(model)
    finally:
        learner.close()
    assert update.grad_norm > 1e-3  # reported as computed
    assert model.handed_norms == [pytest.approx(2e-4, rel=1e-3)]
