"""ViZDoom as a headless ``gymnasium.Env`` with the tutorial's preprocessing.

Frames are cropped (top, bottom, left, right), resized to ``frame_size`` x ``frame_size`` and
kept as uint8 in channel-first layout: ``(1, H, W)`` grayscale, or ``(3, H, W)`` with ``rgb``.
With ``game_variables`` (``HEALTH``, ``AMMO2``, ...) one more channel follows whose first pixels
hold the variables' values (clipped to 0..255), so the observation stays one uint8 array that
rollouts, checkpoints and evaluation handle unchanged; ``model.game_variables`` tells the network
to read them from there. Each discrete action presses one of the scenario's buttons and is
repeated for ``frame_skip`` tics; with ``noop`` one more action, the last, presses none, so a
policy can wait without turning or moving (which a scenario's own buttons may not allow). The
reward is the game's reward over those tics times ``reward_scale``.

``reward_shaping`` adds, to the reward learned from, each named game variable's change over the
step times its weight (``{AMMO2: 0.1}``: -0.1 a bullet fired), so a cost the game only charges
much later (a bullet wasted now leaves the agent unarmed at the end) is paid when it is
incurred. The game's own reward stays what is reported: ``info["score_reward"]`` (scaled, as the
reward) is what episode returns and evaluations add up.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import gymnasium as gym
import numpy as np

from a3c_exp.envs.scenarios import resolve_scenario


def default_workdir() -> Path:
    """Where ViZDoom's ``_vizdoom/`` folder and ini file go when the caller names no folder."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "a3c_exp" / "vizdoom"


def prepare_workdir(workdir: Path) -> Path:
    """Create ``workdir/_vizdoom`` up front.

    Several engines starting together in a fresh folder race on creating ``_vizdoom/`` and the
    loser can hang; once the folder exists no engine tries to create it.
    """
    workdir = Path(workdir).resolve()
    (workdir / "_vizdoom").mkdir(parents=True, exist_ok=True)
    return workdir


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """Run a block with ``path`` as the current directory (the engine writes relative files)."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class VizDoomEnv(gym.Env[np.ndarray, np.int64]):
    """One ViZDoom game (its engine is a child process of the caller), as a gymnasium env."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 35}  # noqa: RUF012

    def __init__(
        self,
        scenario: str = "basic",
        frame_skip: int = 4,
        frame_size: int = 84,
        crop: Sequence[int] = (10, 10, 30, 30),
        screen_resolution: str = "RES_160X120",
        reward_scale: float = 0.01,
        episode_timeout: int | None = None,
        rgb: bool = False,
        game_variables: Sequence[str] = (),
        reward_shaping: Mapping[str, float] | None = None,
        noop: bool = False,
        render_mode: str | None = None,
        workdir: str | os.PathLike | None = None,
        instance_name: str = "env",
    ) -> None:
        import vizdoom as vzd

        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: allowed: None, 'rgb_array'")
        self.render_mode = render_mode
        self.frame_skip = int(frame_skip)
        self.frame_size = int(frame_size)
        self.crop = tuple(int(c) for c in crop)
        self.reward_scale = float(reward_scale)
        self.rgb = bool(rgb)
        self.game_variables = [str(v) for v in game_variables]
        shaping = dict(reward_shaping or {})
        self._shaping_variables = [getattr(vzd.GameVariable, name) for name in shaping]
        self._shaping_weights = [float(weight) for weight in shaping.values()]
        self._shaping_values = [0.0] * len(shaping)
        self._config_path = resolve_scenario(scenario)
        self._workdir = prepare_workdir(Path(workdir) if workdir else default_workdir())

        game = vzd.DoomGame()
        game.load_config(str(self._config_path))
        game.set_window_visible(False)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_sound_enabled(False)
        game.set_screen_resolution(getattr(vzd.ScreenResolution, screen_resolution))
        # RGB only when the network or a human sees colour; grayscale from the engine is cheaper.
        colour = self.rgb or render_mode is not None
        game.set_screen_format(vzd.ScreenFormat.RGB24 if colour else vzd.ScreenFormat.GRAY8)
        if self.game_variables:
            game.set_available_game_variables(
                [getattr(vzd.GameVariable, name) for name in self.game_variables]
            )
        game.set_doom_config_path(str(self._workdir / f"{instance_name}-{os.getpid()}.ini"))
        if episode_timeout is not None:
            game.set_episode_timeout(int(episode_timeout))
        self.game = game
        self._initialised = False

        n_buttons = game.get_available_buttons_size()
        self._actions = np.eye(n_buttons, dtype=np.float64).tolist()
        self.button_names = [b.name for b in game.get_available_buttons()]
        if noop:
            self._actions.append([0.0] * n_buttons)
            self.button_names.append("NOOP")
        self.action_space = gym.spaces.Discrete(len(self._actions))
        channels = (3 if self.rgb else 1) + (1 if self.game_variables else 0)
        self.observation_space = gym.spaces.Box(
            0, 255, shape=(channels, self.frame_size, self.frame_size), dtype=np.uint8
        )
        self._last_rgb: np.ndarray | None = None
        self._last_obs = np.zeros(self.observation_space.shape, dtype=np.uint8)

    def _start(self, seed: int | None) -> None:
        """(Re)start the engine; the only way a seed reproduces the same episode exactly."""
        if self._initialised:
            self.game.close()
        if seed is not None:
            self.game.set_seed(int(seed) % (2**31))
        with _working_directory(self._workdir):
            self.game.init()
        self._initialised = True

    def _observe(self) -> np.ndarray:
        """Preprocess the current screen; the last frame again once the episode has ended."""
        state = self.game.get_state()
        if state is None:
            return self._last_obs.copy()
        frame = state.screen_buffer
        if self.render_mode == "rgb_array":
            self._last_rgb = frame  # RGB24 is already (H, W, 3)
            if not self.rgb:
                frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        top, bottom, left, right = self.crop
        height, width = frame.shape[:2]
        frame = frame[top : height - bottom, left : width - right]
        frame = cv2.resize(frame, (self.frame_size, self.frame_size), interpolation=cv2.INTER_AREA)
        frame = np.ascontiguousarray(frame.transpose(2, 0, 1)) if self.rgb else frame[None]
        if self.game_variables:
            variables = np.zeros((1, self.frame_size, self.frame_size), dtype=np.uint8)
            values = np.clip(np.asarray(state.game_variables, dtype=np.float64), 0, 255)
            variables.reshape(-1)[: len(values)] = np.rint(values).astype(np.uint8)
            frame = np.concatenate([frame, variables])
        self._last_obs = frame
        return self._last_obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode; a seed restarts the engine so the episode is reproducible."""
        super().reset(seed=seed)
        if seed is not None or not self._initialised:
            self._start(seed if seed is not None else int(self.np_random.integers(2**31)))
        self.game.new_episode()
        self._shaping_values = self._read_shaping_values()
        return self._observe(), {}

    def _read_shaping_values(self) -> list[float]:
        """The shaping variables' current values (any game variable, available or not)."""
        return [self.game.get_game_variable(variable) for variable in self._shaping_variables]

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Press one button for ``frame_skip`` tics."""
        reward = self.game.make_action(self._actions[int(action)], self.frame_skip)
        finished = self.game.is_episode_finished()
        truncated = finished and self.game.is_episode_timeout_reached()
        terminated = finished and not truncated
        score = float(reward) * self.reward_scale
        learned = score
        info: dict[str, Any] = {"score_reward": score}
        if finished:
            info["game_score"] = float(self.game.get_total_reward())
        elif self._shaping_variables:
            learned += self._shaping_change() * self.reward_scale
        return self._observe(), learned, terminated, truncated, info

    def _shaping_change(self) -> float:
        """The weighted change of the shaping variables since the last step (and remember them)."""
        values = self._read_shaping_values()
        change = sum(
            weight * (new - old)
            for weight, new, old in zip(
                self._shaping_weights, values, self._shaping_values, strict=True
            )
        )
        self._shaping_values = values
        return change

    def render(self) -> np.ndarray | None:
        """The last full-colour screen (``render_mode='rgb_array'``), for videos."""
        if self.render_mode != "rgb_array":
            return None
        if self._last_rgb is None:
            return np.zeros((*self._last_obs.shape[1:], 3), dtype=np.uint8)
        return self._last_rgb

    def close(self) -> None:
        """Stop the engine process."""
        if self._initialised:
            self.game.close()
            self._initialised = False
