"""predict_position played by a timed shot that reads the game's state: what waiting alone kills.

predict_position gives one rocket: a Cacodemon patrols the far wall, crossing the line the player
faces, and the episode ends when the rocket explodes (+1 for the kill, -0.001 a tic, 300 tics).
A learned policy sees only the screen; the policy here reads the monster's exact position from
the engine (objects info) and never turns: it plays ``--episodes`` seeded episodes at
``--frame-skip`` tics per decision and fires at the first decision where the monster's
position, carried forward at its recent velocity by the rocket's launch delay plus its flight
time (distance / 20 units a tic), lies within ``--tolerance`` map units of the line of fire:

* ``now``: no lead at all (fires when the monster is on the line);
* ``lead D``: the launch delay taken as D tics, over ``--delays``.

It shows how much a lead matters and what a policy that can hold its aim and wait gets; it is
not a bound on a policy that also turns (one that turns and fires early pays less of the
-0.001 a tic). It also prints the monster's size on the screen (the labels buffer) at the
engine's resolution and in the preset's frame, so the numbers say how small the target is that
the network must find. Usage: python scripts/predict_position_timed_shot.py [--episodes 100]
[--frame-skip 4] [--crop 40 45 0 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

ROCKET_SPEED = 20.0  # map units a tic (Doom's rocket)
PLAYER_X = -544.0  # the player's start, facing +x along y = 0


def make_game(labels: bool = False):
    """The scenario's own game, headless, with object positions (and labels) exposed."""
    import vizdoom as vzd

    game = vzd.DoomGame()
    game.load_config(os.path.join(vzd.scenarios_path, "predict_position.cfg"))
    game.set_window_visible(False)
    game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
    game.set_objects_info_enabled(True)
    game.set_labels_buffer_enabled(labels)
    game.init()
    return game


def monster_position(state) -> np.ndarray | None:
    """The Cacodemon's (x, y) in map units; None once it is dead and gone."""
    for obj in state.objects:
        if obj.name == "Cacodemon":
            return np.array([obj.position_x, obj.position_y])
    return None


def play(
    game,
    delay: float | None,
    frame_skip: int,
    tolerance: float,
    episodes: int,
    window: int = 32,
    first_seed: int = 5000,
) -> tuple[float, float, float]:
    """Kill rate, mean score and median firing tic of the timed shot (``delay=None``: no lead).

    The velocity is the monster's move over the last ``window`` tics.
    """
    kills, fired_at, scores = 0, [], []
    for episode in range(episodes):
        game.set_seed(first_seed + episode)
        game.new_episode()
        history: list[np.ndarray] = []
        steps = max(1, window // frame_skip)
        fired, tic = False, 0
        while not game.is_episode_finished():
            position = monster_position(game.get_state())
            action = [0, 0, 0]
            if position is not None:
                history.append(position)
            if position is not None and not fired and len(history) > steps:
                velocity = (history[-1] - history[-1 - steps]) / (steps * frame_skip)
                lead = 0.0 if delay is None else delay + (position[0] - PLAYER_X) / ROCKET_SPEED
                if abs(position[1] + velocity[1] * lead) < tolerance:
                    action, fired = [0, 0, 1], True
                    fired_at.append(tic)
            game.make_action(action, frame_skip)
            tic += frame_skip
        kills += game.get_total_reward() > 0.5
        scores.append(game.get_total_reward())
    fired = statistics.median(fired_at) if fired_at else float("nan")
    return kills / episodes, statistics.fmean(scores), fired


def sprite_size(game, frame_size: int, crop: tuple[int, int, int, int], steps: int = 40):
    """Median width and height of the monster in pixels: at 160x120 and in the preset's frame."""
    game.set_seed(0)
    game.new_episode()
    widths, heights = [], []
    for _ in range(steps):
        if game.is_episode_finished():
            break
        for label in game.get_state().labels:
            if label.object_name == "Cacodemon":
                widths.append(label.width)
                heights.append(label.height)
        game.make_action([0, 0, 0], 4)
    top, bottom, left, right = crop
    width, height = statistics.median(widths), statistics.median(heights)
    return (
        width,
        height,
        width * frame_size / (160 - left - right),
        height * frame_size / (120 - top - bottom),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--frame-skip", type=int, default=4)
    parser.add_argument(
        "--tolerance",
        type=float,
        default=24.0,
        help="map units from the line of fire (a Cacodemon's radius is 31)",
    )
    parser.add_argument("--delays", type=float, nargs="+", default=[0, 8, 16])
    parser.add_argument(
        "--crop",
        type=int,
        nargs=4,
        default=[0, 0, 0, 0],
        help="the preset's crop (top bottom left right), for the sprite size",
    )
    parser.add_argument("--frame-size", type=int, default=84)
    args = parser.parse_args(argv)

    game = make_game(labels=True)
    try:
        w, h, fw, fh = sprite_size(game, args.frame_size, tuple(args.crop))
        print(
            f"monster on screen: {w:.0f}x{h:.0f} px at 160x120; {fw:.1f}x{fh:.1f} px in the "
            f"{args.frame_size}x{args.frame_size} frame (crop {args.crop})"
        )
        print(f"frame skip {args.frame_skip}, {args.episodes} episodes, tolerance {args.tolerance}")
        rate, score, tic = play(game, None, args.frame_skip, args.tolerance, args.episodes)
        print(f"now (no lead): kills {rate:.2f}, score {score:.2f}, fires at tic {tic:.0f}")
        for delay in args.delays:
            rate, score, tic = play(game, delay, args.frame_skip, args.tolerance, args.episodes)
            print(
                f"lead, launch delay {delay:g} tics: kills {rate:.2f}, score {score:.2f}, "
                f"fires at tic {tic:.0f}"
            )
    finally:
        game.close()


if __name__ == "__main__":
    sys.exit(main())
