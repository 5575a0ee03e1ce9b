"""Population-based training (``hydra/sweeper=a3c_pbt``): exploit and explore by hand, seeds
of their own, and a population on CartPole that copies, resumes and keeps every interval."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.a3c_exp_sweeper._pbt import (
    better,
    choose_donor,
    explore,
    member_seed,
    perturb_value,
    sample_value,
    slot_use,
)
from hydra_plugins.a3c_exp_sweeper._slots import write_schedule
from tests.helpers import cli_env, start_as_a_terminal_job

SPACE = {
    "optim.lr": FloatDistribution(1e-4, 3e-3, log=True),
    "loss.entropy_coef": FloatDistribution(0.0, 0.02),
    "rollout_len": CategoricalDistribution([5, 10, 20, 30]),
    "envs_per_worker": IntDistribution(1, 8),
    "optim.name": CategoricalDistribution(["shared_adam", "shared_rmsprop"]),
}


def test_every_member_has_a_stream_of_its_own():
    seeds = [member_seed(0, m) for m in range(8)]
    assert len(set(seeds)) == 8
    assert seeds != list(range(seeds[0], seeds[0] + 8))  # derived, not seed + member
    assert member_seed(1, 0) not in seeds and member_seed(0, 3) == seeds[3]


def test_perturbations_stay_inside_the_space():
    assert perturb_value(SPACE["optim.lr"], 2.8e-3, 1.25) == 3e-3  # clipped to the bound
    assert perturb_value(SPACE["optim.lr"], 1e-3, 0.8) == pytest.approx(8e-4)
    assert perturb_value(SPACE["rollout_len"], 10, 1.25) == 20  # a numeric choice: one step
    assert perturb_value(SPACE["rollout_len"], 5, 0.8) == 5  # the lowest stays
    assert perturb_value(SPACE["envs_per_worker"], 1, 1.25) == 2  # at least one step
    assert perturb_value(SPACE["envs_per_worker"], 8, 1.25) == 8
    assert perturb_value(SPACE["optim.name"], "shared_adam", 1.25) == "shared_adam"
    rng = np.random.default_rng(0)
    params = {key: sample_value(dist, rng) for key, dist in SPACE.items()}
    for _ in range(200):
        params = explore(params, SPACE, [0.8, 1.25], 0.25, rng)
        for key, dist in SPACE.items():
            assert dist._contains(dist.to_internal_repr(params[key])), (key, params[key])


def test_resampling_draws_afresh_and_perturbing_never_does():
    rng = np.random.default_rng(1)
    start = {"optim.lr": 1e-3}
    space = {"optim.lr": SPACE["optim.lr"]}
    drawn = {explore(start, space, [0.8, 1.25], 1.0, rng)["optim.lr"] for _ in range(20)}
    assert len(drawn) == 20  # every value new
    moved = {explore(start, space, [0.8, 1.25], 0.0, rng)["optim.lr"] for _ in range(20)}
    assert sorted(moved) == pytest.approx([8e-4, 1.25e-3])


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_bottom_member_copies_the_top_one_in_either_direction(direction):
    rng = np.random.default_rng(0)
    scores = {0: 10.0, 1: 20.0, 2: 30.0, 3: 40.0}
    best, worst = (3, 0) if direction == "maximize" else (0, 3)
    assert choose_donor(worst, scores, direction, 0.25, 0.0, rng) == best
    assert choose_donor(best, scores, direction, 0.25, 0.0, rng) is None  # the best stays
    assert choose_donor(1, scores, direction, 0.25, 0.0, rng) is None  # the middle stays
    # not better by more than the margin: kept
    assert choose_donor(worst, scores, direction, 0.25, 30.0, rng) is None
    assert better(3.0, 1.0, "maximize") and better(1.0, 3.0, "minimize")


def test_nobody_is_replaced_without_a_population_to_compare_with():
    rng = np.random.default_rng(0)
    assert choose_donor(0, {0: 1.0}, "maximize", 0.25, 0.0, rng) is None
    assert choose_donor(0, {}, "maximize", 0.25, 0.0, rng) is None
    # equal scores: nobody better, nobody replaced (a fallback to "the first" would pick one)
    assert choose_donor(0, {0: 5.0, 1: 5.0, 2: 5.0, 3: 5.0}, "minimize", 0.25, 0.0, rng) is None


def test_slot_use_counts_only_the_training_a_resumed_job_did_itself(tmp_path):
    # job 0 trains 20 s in a 25 s slot; job 1 resumes job 0's checkpoint, whose clock goes on:
    # its record says 50 s, of which 30 s are its own, in a 40 s slot
    def record(job, wall, resume=None):
        overrides = ["env=cartpole"] + ([f"resume={resume}"] if resume else [])
        (tmp_path / str(job)).mkdir()
        text = json.dumps({"job": job, "overrides": overrides, "wall_time_s": wall})
        (tmp_path / str(job) / "job.json").write_text(text)

    record(0, 20.0)
    record(1, 50.0, resume=tmp_path / "0" / "checkpoints" / "last.ckpt")
    write_schedule(
        tmp_path,
        [
            {"job": 0, "started_at": 100.0, "ended_at": 125.0},
            {"job": 1, "started_at": 125.0, "ended_at": 165.0},
        ],
    )
    use = slot_use(tmp_path)
    assert use["slot_seconds"] == pytest.approx(65.0)
    assert use["train_seconds"] == pytest.approx(50.0)
    assert use["overhead_share"] == pytest.approx(15.0 / 65.0)


PBT = [
    "--multirun",
    "hydra/sweeper=a3c_pbt",
    "hydra/launcher=parallel_local",
    # one slot: the members take turns (the fewest steps next), so every ready point after the
    # first meets the other member's latest score and the exploits do not hang on a race
    "hydra.launcher.array_parallelism=1",
    "hydra.sweeper.population=2",
    "hydra.sweeper.ready_every=1500",
    "hydra.sweeper.warmup_intervals=0",
    "hydra.sweeper.quantile=0.5",
    "env=cartpole",
    "workers=1",
    "total_steps=4500",
    "logger=wandb",
    "video_every=0",
    "checkpoint_every=0",
    "target_reward=null",
]


def _lineage(sweep_dir):
    with open(sweep_dir / "pbt_lineage.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_a_population_exploits_explores_and_resumes_without_running_an_interval_twice(tmp_path):
    sweep_dir = tmp_path / "pbt"
    cmd = [sys.executable, "-m", "a3c_exp.train", *PBT, f"hydra.sweep.dir={sweep_dir}"]
    proc = start_as_a_terminal_job(cmd, tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # stop it once some intervals have ended
        if (sweep_dir / "pbt_lineage.csv").is_file() and len(_lineage(sweep_dir)) >= 3:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    before = _lineage(sweep_dir)
    assert len(before) >= 3
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env=cli_env(), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _lineage(sweep_dir)
    assert rows[: len(before)] == before  # kept, not run again
    intervals = [(r["member"], r["interval"]) for r in rows]
    assert len(intervals) == len(set(intervals)) == 6  # 2 members x 3 intervals, each once
    for row in rows:
        assert 1e-4 <= float(row["optim.lr"]) <= 3e-3
    assert any(r["parent"] != r["member"] for r in rows), "no member ever copied another"
    state = json.loads((sweep_dir / "pbt_state.json").read_text())
    assert all(m["done"] and m["own_steps"] >= 4500 for m in state["members"])
    assert len({m["seed"] for m in state["members"]}) == 2
    summary = (sweep_dir / "summary.md").read_text()
    assert "Best member:" in summary and "last.ckpt" in summary
    assert (sweep_dir / "pbt_schedule.png").stat().st_size > 0
    from a3c_exp.reporting.wandb_file import read_wandb_run

    ids = {}
    for row in rows:
        run = read_wandb_run(sweep_dir / row["job"] / "wandb")
        ids.setdefault(row["member"], set()).add(run.run_id)
        assert run.group.startswith("sweep-")
    assert all(len(runs) == 1 for runs in ids.values()) and len(ids) == 2  # a run per member
