"""Every random stream of a run derives from its seed, and runs with different seeds share none."""

from pathlib import Path

import pytest

from a3c_exp.algo.rollout import env_seed
from a3c_exp.config import ConfigError
from a3c_exp.envs import EnvSpec
from a3c_exp.runtime.checks import load_validated
from a3c_exp.runtime.worker import worker_spec
from a3c_exp.seeding import SAMPLER, derive_seed


def _streams(cfg, workers: int, restarts: int, steps: tuple[int, ...]) -> list[int]:
    """The seeds of every env and sampler of every worker of a run, restarts and resumes too."""
    spec = EnvSpec(obs_shape=(4,), n_actions=2)
    seeds = []
    for rank in range(workers):
        for restart in range(restarts):
            for step in steps:
                worker = worker_spec(cfg, spec, Path("run"), rank, restart, step).seed
                seeds += [env_seed(worker, i) for i in range(4)]
                seeds.append(derive_seed(worker, SAMPLER))
    return seeds


def test_runs_with_neighbouring_seeds_share_no_stream(compose_train):
    runs = [
        _streams(load_validated(compose_train(["env=cartpole", f"seed={seed}"])), 8, 3, (0, 6000))
        for seed in range(4)
    ]
    every = [seed for run in runs for seed in run]
    assert len(set(every)) == len(every)  # no stream of any run repeats in another (or itself)


def test_same_seed_gives_the_same_streams(compose_train):
    cfg = load_validated(compose_train(["env=cartpole", "seed=3"]))
    assert _streams(cfg, 2, 2, (0,)) == _streams(cfg, 2, 2, (0,))
    assert all(0 <= seed < 2**63 for seed in _streams(cfg, 2, 2, (0,)))


def test_negative_seed_is_refused_in_one_line(compose_train):
    with pytest.raises(ConfigError, match=r"^seed=-1: must be an integer >= 0$"):
        load_validated(compose_train(["env=cartpole", "seed=-1"]))
