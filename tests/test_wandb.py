"""The W&B run of a training job, read back from its offline file (no network); a resumed
run continuing its W&B run is checked with resume=latest in test_train_run."""

import signal
import subprocess
import sys
import time

import pytest

from a3c_exp.reporting.wandb_file import read_wandb_run
from tests.helpers import cli_env, read_metrics, run_train

pytestmark = pytest.mark.slow

TUTORIAL_SUMMARIES = {
    "Perf/Reward",
    "Perf/Length",
    "Perf/Value",
    "Losses/Value Loss",
    "Losses/Policy Loss",
    "Losses/Entropy",
    "Losses/Grad Norm",
    "Losses/Var Norm",
}


def test_offline_run_holds_tutorial_summaries_against_env_steps(tmp_path):
    run_dir = tmp_path / "wb"
    run_train(run_dir, "experiment=cartpole_smoke", "logger=wandb", "loss.entropy_coef=0.02")
    run = read_wandb_run(run_dir / "wandb")
    assert run.exit_code == 0
    assert run.metric_keys() >= TUTORIAL_SUMMARIES
    steps = [row["global_step"] for row in run.history if "global_step" in row]
    assert steps == sorted(steps) and steps[-1] >= 3000
    assert run.config["env"]["id"] == "CartPole-v1" and run.config["workers"] == 2
    assert run.config["loss"]["entropy_coef"] == 0.02
    assert run.summary["total_steps"] >= 3000 and "final_mean_reward" in run.summary
    assert run.name == "cartpole-w2-cartpole_smoke-ent0.02"


def test_interrupted_run_is_finished_non_zero_and_api_key_never_written(tmp_path):
    run_dir = tmp_path / "sigint"
    secret = "a3cexp" + "0123456789abcdef" * 2 + "cafe"
    env = {**cli_env(), "WANDB_API_KEY": secret}
    cmd = [
        sys.executable,
        "-m",
        "a3c_exp.train",
        f"hydra.run.dir={run_dir}",
        "env=cartpole",
        "workers=2",
        "logger=wandb",
        "total_steps=100000000",
        "target_reward=null",
        "log_every=0.5",
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        rows = read_metrics(run_dir)
        if rows and int(rows[-1]["global_step"]) > 0:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    run = read_wandb_run(run_dir / "wandb")
    assert run.exit_code == 130
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_short_doom_run_logs_episode_videos(tmp_path):
    run_dir = tmp_path / "doomvid"
    run_train(
        run_dir,
        "env=doom",
        "workers=1",
        "total_steps=300",
        "video_every=2",
        "logger=wandb",
        "log_every=1",
        timeout=180,
    )
    gifs = sorted((run_dir / "videos").glob("worker0-episode*.gif"))
    assert gifs, "worker 0 wrote no GIF"
    import imageio.v2 as imageio

    frames = imageio.mimread(gifs[0])
    assert len(frames) > 1 and frames[0].shape[:2] == (120, 160)
    run = read_wandb_run(run_dir / "wandb")
    videos = [row for row in run.history if "Media/Episode" in row]
    assert videos and all(row["Media/Episode"]["_type"] == "video-file" for row in videos)
    assert (run_dir / "learning_curve.png").is_file()


def test_online_mode_without_credentials_stops_before_any_worker(tmp_path):
    env = cli_env()
    for key in ("WANDB_API_KEY", "WANDB_MODE", "NETRC"):
        env.pop(key, None)
    env["HOME"] = str(tmp_path)  # no ~/.netrc login
    run_dir = tmp_path / "online"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "a3c_exp.train",
            f"hydra.run.dir={run_dir}",
            "env=cartpole",
            "workers=1",
            "logger.wandb.mode=online",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and "logger.wandb.mode='online': no W&B credentials" in errors[0]
    # stopped before any worker started: no "started N workers" line, no metrics row
    assert "workers x" not in result.stdout + result.stderr and not read_metrics(run_dir)
