"""Sweep labels name each job by what differs between jobs, numbers to 3 significant figures."""

import pytest

from a3c_exp.reporting.labels import format_value, split_overrides, sweep_labels

OPTUNA_JOBS = [
    [
        "loss.entropy_coef=0.024384255846226832",
        "loss.gae_lambda=0.9383441518825778",
        "optim.lr=0.0020812345",
        "rollout_len=30",
        "env=cartpole",
        "workers=1",
        "total_steps=3000",
        "logger=none",
    ],
    [
        "loss.entropy_coef=0.0001234",
        "loss.gae_lambda=0.95",
        "optim.lr=0.0020812345",
        "rollout_len=5",
        "env=cartpole",
        "workers=1",
        "total_steps=3000",
        "logger=none",
    ],
]


def test_labels_hold_only_the_keys_that_vary_and_the_title_what_jobs_share():
    title, labels = sweep_labels(OPTUNA_JOBS)
    assert labels == ["ent=0.0244 λ=0.938 n=30", "ent=1.23e-4 λ=0.95 n=5"]
    assert title == "lr=2.08e-3 env=cartpole workers=1 steps=3000"  # logger=none: reporting only


def test_a_key_set_by_some_jobs_only_varies():
    shared, varying = split_overrides([["env=cartpole", "seed=1"], ["env=cartpole"]])
    assert shared == {"env": "cartpole"}
    assert varying == [{"seed": "1"}, {"seed": "default"}]


def test_keys_with_the_same_leaf_keep_their_full_names():
    _, labels = sweep_labels([["a.lr=0.1", "b.lr=0.2"], ["a.lr=0.3", "b.lr=0.2"]])
    assert labels == ["a.lr=0.1", "a.lr=0.3"]
    _, labels = sweep_labels([["a.lr=0.1", "b.lr=0.2"], ["a.lr=0.3", "b.lr=0.4"]])
    assert labels == ["a.lr=0.1 b.lr=0.2", "a.lr=0.3 b.lr=0.4"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.024384255846226832", "0.0244"),
        ("0.9383441518825778", "0.938"),
        ("0.0020812345", "2.08e-3"),
        ("0.001", "1e-3"),
        ("0.01", "0.01"),
        ("30", "30"),
        ("3000.0", "3000"),
        ("1234567.0", "1.23e6"),
        ("mlp", "mlp"),
        ("true", "true"),
    ],
)
def test_numbers_are_rounded_to_three_significant_figures(value, shown):
    assert format_value(value) == shown
