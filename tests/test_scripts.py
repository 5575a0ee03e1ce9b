"""Every script under scripts/ answers --help, and plot/summary scripts work on real outputs."""

import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from a3c_exp.sweep import write_job_record
from tests.helpers import cli_env, load_script

SCRIPTS = sorted((Path(__file__).parent.parent / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_has_help(script):
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    assert result.returncode == 0 and "usage:" in result.stdout


def test_sweep_summary_script_sorts_jobs_and_lists_failures(tmp_path):
    for job, (objective, status) in enumerate(
        [(10.0, "completed"), (30.0, "completed"), (None, "failed")]
    ):
        job_dir = tmp_path / str(job)
        job_dir.mkdir()
        write_job_record(
            job_dir,
            {
                "job": job,
                "overrides": [f"seed={job}"],
                "status": status,
                "objective": objective,
                "error": None if objective else "boom",
            },
        )
    script = SCRIPTS[0].parent / "sweep_summary.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    rows = [
        line for line in result.stdout.splitlines() if line.startswith("| ") and "seed=" in line
    ]
    assert [row.split("|")[2].strip() for row in rows] == ["seed=1", "seed=0", "seed=2"]
    assert "boom" in rows[-1]
    assert (tmp_path / "summary.csv").is_file()


@pytest.mark.parametrize("command", ["a3c-train", "a3c-eval"])
def test_console_scripts_find_their_configs(command, tmp_path):
    executable = Path(sys.executable).parent / command
    if not executable.exists():
        pytest.skip(f"{command} is not installed next to this interpreter")
    result = subprocess.run(
        [str(executable), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "groups" in result.stdout and "cartpole" in result.stdout


def _row(step, seconds, episodes, reward):
    return {
        "global_step": str(step),
        "Perf/Time": str(seconds),
        "Perf/Episodes": str(episodes),
        "Perf/Mean Reward (last 100)": str(reward),
    }


def test_benchmarks_count_solved_only_over_a_full_window():
    # a lucky first episode (0.9 over 3 episodes) is not a solve; the full window at 20 s is
    rows = [
        _row(1000, 10.0, 3, 0.9),
        _row(3000, 20.0, 150, 0.8),
        _row(4000, 30.0, 400, 0.8),
    ]
    throughput = load_script("bench_throughput").summarise(rows, solved=0.75)
    assert throughput["solved_at_s"] == 20.0
    assert throughput["before_solved"] == pytest.approx(200.0)  # 2000 steps in 10 s
    assert throughput["after_solved"] == pytest.approx(100.0)
    solve = load_script("bench_solve")
    assert [solve._value(r, solve.TASKS["doom"]) for r in rows] == [None, 0.8, 0.8]
    # health_gathering is judged on tics survived: the last-100 length x 4 tics per step
    rows[1]["Perf/Mean Length (last 100)"] = "510.0"
    assert solve._value(rows[1], solve.TASKS["health_gathering"]) == 2040.0


def test_bench_solve_reads_the_reference_progress_lines():
    solve = load_script("bench_solve")
    line = "t=95s steps=61234 sps=644 eps=2000 mean100=76.3\n"
    match = solve.REFERENCE_LINE.search(line)
    assert (match["t"], match["steps"], match["mean"]) == ("95", "61234", "76.3")


def test_tree_memory_counts_child_processes():
    import psutil

    from a3c_exp.runtime.processes import tree_memory

    me = psutil.Process()
    alone = tree_memory(me)
    assert alone.rss >= alone.pss >= alone.uss > 0
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        child_rss = psutil.Process(child.pid).memory_info().rss
        with_child = tree_memory(me)
        assert with_child.rss >= alone.rss + child_rss // 2
        # PSS lies between USS and RSS; how it moves with the child is not a fixed amount (the
        # child's shared libraries lower this process's share of them)
        assert with_child.rss >= with_child.pss >= with_child.uss > 0
    finally:
        child.kill()
        child.wait()


def test_bench_scenarios_table_fills_row_by_row(tmp_path):
    bench_scenarios = load_script("bench_scenarios")
    row = {"preset": "doom_take_cover", "minutes": 0, "workers": 2}
    results = {"take_cover": {**row, "random_mean": 210.0, "random_std": 108.0}}
    bench_scenarios.write_results(results, tmp_path)
    table = (tmp_path / "scenarios.md").read_text()
    assert "| take_cover | – | 0 | – | – | – | – | 210.0 ± 108.0 |" in table
    assert "not trained yet" in table
    results["defend_the_center"] = {
        **row,
        "minutes": 30,
        "env_steps": 2_500_000,
        "eval_mean": 12.5,
        "eval_std": 2.0,
        "eval_tics": 1500.0,
        "eval_tics_std": 100.0,
        "random_mean": 0.6,
        "random_std": 1.3,
        "load": "4.1 [3.0–5.0]",
    }
    bench_scenarios.write_results(results, tmp_path)
    lines = (tmp_path / "scenarios.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    # rows follow the script's scenario order, whatever order they were measured in
    assert [r.split(" | ")[0] for r in rows] == ["| defend_the_center", "| take_cover"]
    assert "| 30 min, 2 workers | 1 | 2,500,000 | 12.5 ± 2.0 (1 seed) |" in rows[0]


def test_bench_scenarios_rows_give_each_seed_and_their_iqm_and_interval():
    bench_scenarios = load_script("bench_scenarios")

    def seed(value, seconds):
        return {
            "env_steps": 1000,
            "eval_mean": value,
            "eval_std": 1.0,
            "eval_tics": 10.0,
            "eval_tics_std": 1.0,
            "final_train_mean": value,
            "time_to_target_s": seconds,
            "load_samples": [2.0, 3.0],
        }

    base = {"preset": "doom_defend_the_line", "minutes": 30, "workers": 2}
    row = bench_scenarios.seeds_row(
        "defend_the_line",
        {**base, "random_mean": 7.0, "random_std": 3.0},
        [seed(20.0, 400.0), seed(30.0, None), seed(31.0, 200.0), seed(29.0, 600.0)],
        "abc1234",
    )
    assert row["n_seeds"] == 4 and row["eval_mean"] == pytest.approx(27.5)
    assert row["eval_iqm"] == pytest.approx(29.5)  # the middle two of 20, 29, 30, 31
    assert row["eval_ci95_low"] < row["eval_mean"] < row["eval_ci95_high"]
    assert row["time_to_target_s"] == 400.0 and row["reached_target"] == 3  # median of 3
    assert row["commit"] == "abc1234"  # the commit taken when the run began
    line = bench_scenarios.render_short_table({"defend_the_line": row})
    assert "| 29.5 [" in line and "(4 seeds) | 7.00 |" in line
    rows = [
        {
            "global_step": "10",
            "Perf/Time": "5",
            "Perf/Episodes": "50",
            "Perf/Mean Reward (last 100)": "0.3",
        },
        {
            "global_step": "20",
            "Perf/Time": "9",
            "Perf/Episodes": "120",
            "Perf/Mean Reward (last 100)": "0.2",
        },
        {
            "global_step": "30",
            "Perf/Time": "14",
            "Perf/Episodes": "170",
            "Perf/Mean Reward (last 100)": "0.31",
        },
    ]
    # the first crossing with 100 episodes seen, in game units (reward_scale 0.01)
    assert bench_scenarios.time_to_target(rows, 0.01, 25) == 14.0
    assert bench_scenarios.time_to_target(rows, 0.01, 40) is None


def test_bench_sweep_rechecks_the_best_config_with_seeds_no_search_used():
    import argparse

    bench = load_script("bench_sweep")
    args = argparse.Namespace(steps=40_000, slots=2, recheck_seeds=3)
    best = {"optim.lr": 0.0008, "rollout_len": 5}
    extra = ["hydra.sweeper.sampler_seed=1", "loss.value_coef=0.25"]
    cmd = bench.recheck_command(Path("/tmp/x_recheck"), best, args, extra)
    overrides = cmd[cmd.index("--multirun") + 1 :]
    assert "optim.lr=0.0008" in overrides and "rollout_len=5" in overrides
    assert "loss.value_coef=0.25" in overrides  # what both searches trained with
    assert not [o for o in overrides if o.startswith("hydra.sweeper.")]  # no search now
    assert "total_steps=40000" in overrides  # the searches' budget
    (seeds,) = [o.removeprefix("seed=") for o in overrides if o.startswith("seed=")]
    fresh = [int(s) for s in seeds.split(",")]
    assert len(set(fresh)) == 3 and min(fresh) >= bench.RECHECK_FIRST_SEED > 0


def _finished_sweep(sweep_dir: Path, finals: list[float], total: int = 8000) -> None:
    """A sweep without pruning: trial i reports finals[i] at every milestone, 10 s a run."""
    import json

    every = total // 10
    for trial, final in enumerate(finals):
        job_dir = sweep_dir / str(trial)
        job_dir.mkdir(parents=True)
        lines = [json.dumps({"step": every * k, "value": final}) for k in range(1, 10)]
        (job_dir / "trial_reports.jsonl").write_text("\n".join(lines) + "\n")
        overrides = [f"total_steps={total}", f"trial={trial}", f"seed={trial}"]
        write_job_record(
            job_dir,
            {
                "job": trial,
                "overrides": overrides,
                "status": "completed",
                "objective": final,
                "wall_time_s": 10.0,
                "total_steps": total + 40,
            },
        )


def test_replay_prunes_the_late_poor_trials_and_never_the_first_ones(tmp_path):
    replay = load_script("replay_pruners")
    _finished_sweep(tmp_path, [80, 70, 60, 50, 40, 30, 20, 10, 5, 1])
    trials, total, fixed_s = replay.load_trials(tmp_path, reports=10)
    assert [t.number for t in trials] == list(range(10)) and total == 8000 and fixed_s == 0.0
    base = replay.sweep_settings(tmp_path)

    def run(setting):
        return replay.replay(trials, replay.parse_setting(setting, base), total, 2, fixed_s)

    none = run("pruner=none")
    assert none.pruned == [] and none.slot_s == pytest.approx(100.0)
    assert none.wall_s == pytest.approx(50.0)  # 10 runs of 10 s on 2 slots
    median = run("pruner=median pruner_warmup_reports=1")
    # below the median of 5 finished trials once past the warm-up: stopped at their 2nd report
    assert set(median.pruned) >= {6, 7, 8, 9} and not set(median.pruned) & {0, 1, 2, 3, 4}
    assert 0 in median.finished and median.slot_s < 0.8 * none.slot_s
    # successive halving would stop trial 1 (below trial 0 at the first rung), but the first
    # pruner_startup_trials trials run whole
    assert not set(run("pruner=successive_halving").pruned) & {0, 1, 2, 3, 4}
    assert 1 in run("pruner=successive_halving pruner_startup_trials=0").pruned


def test_replay_reads_an_older_sweep_from_its_metrics(tmp_path):
    replay = load_script("replay_pruners")
    (tmp_path / "metrics.csv").write_text(
        f"global_step,{replay.LAST_100}\n1000,10.0\n3000,30.0\n5000,\n"
    )
    values = replay._milestone_values(tmp_path, [2000, 3000, 4000], objective=55.0)
    assert values == [20.0, 30.0, 55.0]  # interpolated, then the objective at the budget
    with pytest.raises(SystemExit, match="not key=value"):
        replay.parse_setting("pruner=median warmup=1", replay.sweep_settings(tmp_path))


def test_checkpoint_drift_is_zero_between_equal_checkpoints_only(tmp_path):
    import shutil

    from tests.helpers import run_train

    run_dir = tmp_path / "run"
    run_train(run_dir, "experiment=cartpole_smoke")
    checkpoints = sorted((run_dir / "checkpoints").glob("step-*.ckpt"))
    assert len(checkpoints) >= 2
    first, second = checkpoints[0], checkpoints[-1]
    ckpt_dir = tmp_path / "ckpts"
    ckpt_dir.mkdir()
    shutil.copy(first, ckpt_dir / "step-0000000001.ckpt")
    shutil.copy(first, ckpt_dir / "step-0000000002.ckpt")  # the same weights again
    shutil.copy(second, ckpt_dir / "step-0000000003.ckpt")
    drift = load_script("checkpoint_drift")
    sequences = drift.record_episodes(ckpt_dir / "step-0000000001.ckpt", 2, 0, tmp_path)
    rows = drift.drift(sorted(ckpt_dir.glob("step-*.ckpt")), sequences)
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert rows[1]["kl"] == 0.0 and rows[1]["moved_by"] == 0.0
    assert rows[2]["kl"] > 0.0 and rows[2]["moved_by"] > 0.0
    assert 0.0 < rows[0]["entropy"] <= math.log(2) + 1e-6
    assert 0.0 <= rows[2]["units_alive"] <= 1.0


def test_bench_solve_counts_the_seconds_below_half_the_best_so_far():
    # solved at row 1 (t=10); the best so far rises to 20 at t=30, so the 8 at t=40 is below
    # half of it (10 s) while the 6 at t=20 was not below half of the best then (10); the
    # None row (no full window) is skipped and the 9 at t=60 counts its 20 s from t=40
    times = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    values = [4.0, 10.0, 6.0, 20.0, 8.0, None, 9.0]
    solve = load_script("bench_solve")
    assert solve.seconds_below_half_best(times, values, first=1) == 30.0
    assert solve.seconds_below_half_best(times[:3], [4.0, 10.0, 10.0], first=1) == 0.0


def test_doom_shots_counts_each_episodes_rounds_hits_and_kills(compose_train, tmp_path):
    from a3c_exp.algo.module import A3CModule
    from a3c_exp.config import as_plain_data
    from a3c_exp.runtime.checks import load_validated

    cfg = load_validated(compose_train(["env=doom_defend_the_center"]))
    module = A3CModule(as_plain_data(cfg), [1, 84, 84], 3)  # an untrained policy
    shots = load_script("doom_shots")
    rows = shots.shots(module, cfg.env, episodes=2, seed=0, workdir=tmp_path)
    assert len(rows) == 2
    for row in rows:
        # the scenario's 26 rounds; one shot kills; +1 a kill and -1 for dying
        assert 0 < row["rounds_fired"] <= 26
        assert 0 <= row["kills"] <= row["hits"] <= row["rounds_fired"]
        assert row["reward"] in (row["kills"], row["kills"] - 1)
        assert row["steps"] > 0
    # Doom turns slower for the first 6 tics a key is held: one step of 4 tics turns as far as
    # two of 2 tics, and a held turn goes further per step than the first
    turn = {
        skip: shots.turn_steps(replace(cfg.env, frame_skip=skip), 4, tmp_path) for skip in (2, 4)
    }
    assert turn[4][0] == pytest.approx(2 * turn[2][0], abs=0.02)
    assert turn[4][-1] > turn[4][0] > 0


def test_bench_scenarios_takes_its_seeds_from_its_options_and_refuses_a_seed_override(capsys):
    bench_scenarios = load_script("bench_scenarios")
    args = bench_scenarios.parse_args(
        ["--scenario", "my_way_home", "--seeds", "2", "--first-seed", "1", "--", "intrinsic=icm"]
    )
    assert args.seed_list == [1, 2] and args.overrides == ["intrinsic=icm"]
    assert bench_scenarios.parse_args(["--scenario", "basic"]).seed_list == [0, 1, 2]
    with pytest.raises(SystemExit) as refused:
        bench_scenarios.parse_args(["--scenario", "basic", "--", "seed=1"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: seed=1: the seeds come from --seeds and --first-seed, not from seed=\n"


def test_predict_position_timed_shot_kills_with_a_lead_and_not_without():
    """The timed shot: leading the monster by the rocket's launch delay and
    flight kills most episodes; firing when it is on the line of fire kills none."""
    timed = load_script("predict_position_timed_shot")
    game = timed.make_game(labels=True)
    try:
        lead_rate, _, lead_tic = timed.play(game, 8, 4, 24.0, episodes=20)
        now_rate, _, _ = timed.play(game, None, 4, 24.0, episodes=20)
        width, height, frame_w, frame_h = timed.sprite_size(game, 84, (40, 45, 0, 0))
    finally:
        game.close()
    assert lead_rate >= 0.5 and now_rate <= 0.05
    assert 100 < lead_tic < 250  # it waits for the monster to come to the line
    assert frame_w == pytest.approx(width * 84 / 160) and frame_h == pytest.approx(height * 84 / 35)
