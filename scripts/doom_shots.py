"""Where a Doom shooting policy's rounds go, and how finely one agent step can aim.

defend_the_center gives 26 rounds and a monster dies of one shot, so when every episode ends with
the rounds spent, the kills are the hits and the misses are what keeps a policy below the
scenario's ceiling. Given a checkpoint, this script plays episodes with its policy (sampling, as
``a3c_exp.evaluate`` does) and prints per episode the game's reward, the rounds fired, the hits
and the kills (the engine's AMMO2, HITCOUNT and KILLCOUNT), then the degrees one TURN_LEFT step
turns at the checkpoint's frame skip: first from standing, then while the turn is held (Doom
turns slower for the first 6 tics a key is held). A turn step wider than a monster on the screen
is a shot that can miss whatever the policy learned.

Usage: python scripts/doom_shots.py CHECKPOINT [--episodes 20] [--seed 0] [--frame-skip N]
(``--frame-skip``: measure the turn step at another frame skip too.)
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from a3c_exp.algo.module import module_from_checkpoint
from a3c_exp.config import parse_env
from a3c_exp.envs import make_env
from a3c_exp.evaluate import play_episodes


def turn_steps(env_cfg: Any, steps: int, workdir: Path) -> list[float]:
    """Degrees turned by each of ``steps`` TURN_LEFT steps in a row, from standing."""
    import vizdoom as vzd

    env = make_env(env_cfg, rank=0, workdir=str(workdir))
    try:
        env.reset(seed=0)
        game = env.unwrapped.game
        turn_left = env.unwrapped.button_names.index("TURN_LEFT")
        angles = [game.get_game_variable(vzd.GameVariable.ANGLE)]
        for _ in range(steps):
            env.step(turn_left)
            angles.append(game.get_game_variable(vzd.GameVariable.ANGLE))
    finally:
        env.close()
    return [round((new - old) % 360.0, 2) for old, new in itertools.pairwise(angles)]


def shots(module: Any, env_cfg: Any, episodes: int, seed: int, workdir: Path) -> list[dict]:
    """Per episode: the game's reward, steps, rounds fired, hits and kills of the policy."""
    import vizdoom as vzd

    counters = {
        "rounds": vzd.GameVariable.AMMO2,
        "hits": vzd.GameVariable.HITCOUNT,
        "kills": vzd.GameVariable.KILLCOUNT,
    }
    starts, lasts = [], []

    def read(env: Any, steps: int, done: bool) -> None:
        if done:  # the counters read 0 once the episode has ended: keep the last step's
            return
        game = env.unwrapped.game
        values = {name: game.get_game_variable(v) for name, v in counters.items()}
        if steps == 0:
            starts.append(values)
            lasts.append(values)
        else:
            lasts[-1] = values

    played = play_episodes(module, env_cfg, episodes, False, seed, workdir, watch=read)
    return [
        {
            "reward": episode["reward"] / env_cfg.reward_scale,
            "steps": episode["length"],
            "rounds_fired": start["rounds"] - last["rounds"],
            "hits": last["hits"] - start["hits"],
            "kills": last["kills"] - start["kills"],
        }
        for episode, start, last in zip(played, starts, lasts, strict=True)
    ]


def main() -> None:
    """Play the checkpoint's policy, print its rounds, hits and kills and the turn step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frame-skip", type=int, action="append", default=[])
    args = parser.parse_args()
    module, _ = module_from_checkpoint(args.checkpoint)
    env_cfg = parse_env(module.hparams.cfg.get("env", {}))
    if env_cfg.kind != "vizdoom":
        sys.exit(f"{args.checkpoint}: env.kind={env_cfg.kind!r}; this script reads Doom's counters")
    with tempfile.TemporaryDirectory() as workdir:
        rows = shots(module, env_cfg, args.episodes, args.seed, Path(workdir))
        print("episode | reward | steps | rounds fired | hits | kills")
        for i, row in enumerate(rows):
            print(
                f"{i} | {row['reward']:g} | {row['steps']} | {row['rounds_fired']:g} | "
                f"{row['hits']:g} | {row['kills']:g}"
            )
        mean = {key: statistics.fmean(row[key] for row in rows) for key in rows[0]}
        fired = sum(row["rounds_fired"] for row in rows)
        hit_share = sum(row["hits"] for row in rows) / fired if fired else float("nan")
        print(
            f"mean: reward {mean['reward']:.2f}, steps {mean['steps']:.0f}, rounds fired "
            f"{mean['rounds_fired']:.2f}, hits {mean['hits']:.2f}, kills {mean['kills']:.2f}; "
            f"{hit_share:.1%} of the rounds fired hit"
        )
        for skip in [env_cfg.frame_skip, *args.frame_skip]:
            skip_cfg = dataclasses.replace(env_cfg, frame_skip=skip)
            degrees = turn_steps(skip_cfg, 6, Path(workdir))
            print(f"frame skip {skip}: TURN_LEFT steps in a row turn {degrees} degrees")


if __name__ == "__main__":
    main()
