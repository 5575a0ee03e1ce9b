"""Locate ViZDoom scenario files: shipped scenario names or explicit paths to a ``.cfg``."""

from __future__ import annotations

import os
import re
from pathlib import Path

MULTIPLAYER_SCENARIOS = frozenset({"cig", "multi", "multi_duel"})
"""Shipped configs that need a host and other players: not trainable by a single agent."""

FULL_GAME_CONFIGS = frozenset({"doom", "doom2", "freedoom1", "freedoom2", "oblige"})
"""Shipped configs for whole games rather than training scenarios (usable as env.scenario)."""


UNSERVED_SCENARIOS = {
    "deathmatch": "its *_DELTA buttons are axes (turn by n degrees), and a one-hot action over "
    "20 buttons with weapon selection is not the task",
    "basic_audio": "the task is in the sound (the audio buffer), which the network does not hear",
    "basic_notifications": "the task is in the engine's text notifications, which the network "
    "does not read",
    "simpler_basic": "basic with plainer textures: env=doom serves the task",
    "learning": "basic's map at the engine's default skill (the config of ViZDoom's learning "
    "example): env=doom serves the task",
}
"""Shipped single-player configs without an env preset, and why: by name they are refused (a
path to their .cfg still loads, for whoever adds what they need)."""


class ScenarioError(ValueError):
    """A scenario name or file that cannot be used."""


def shipped_scenarios_dir() -> Path:
    """The folder of standard scenarios inside the installed vizdoom wheel."""
    import vizdoom

    return Path(vizdoom.scenarios_path)


def shipped_scenarios() -> list[str]:
    """Names of the single-player training scenarios shipped with vizdoom that can be trained
    here (``basic``, ...): not the multiplayer, full-game or unserved ones."""
    names = sorted(p.stem for p in shipped_scenarios_dir().glob("*.cfg"))
    excluded = MULTIPLAYER_SCENARIOS | FULL_GAME_CONFIGS | set(UNSERVED_SCENARIOS)
    return [n for n in names if n not in excluded]


def resolve_scenario(scenario: str) -> Path:
    """Return the ``.cfg`` path for a scenario name or path, checking it and its WAD exist.

    Raises ScenarioError with a one-line message naming the value and what is allowed.
    """
    as_path = Path(os.path.expanduser(scenario))
    if as_path.suffix == ".cfg" or os.sep in scenario:
        cfg_path = as_path.resolve()
        if not cfg_path.is_file():
            raise ScenarioError(f"env.scenario={scenario!r}: file {cfg_path} does not exist")
    else:
        cfg_path = shipped_scenarios_dir() / f"{scenario}.cfg"
        if scenario in UNSERVED_SCENARIOS:
            raise ScenarioError(
                f"env.scenario={scenario!r}: not served: {UNSERVED_SCENARIOS[scenario]}"
            )
        if not cfg_path.is_file() or scenario in MULTIPLAYER_SCENARIOS:
            allowed = ", ".join(shipped_scenarios())
            raise ScenarioError(
                f"env.scenario={scenario!r}: unknown scenario; allowed: {allowed} "
                "or a path to a .cfg file"
            )
    _check_scenario_file(cfg_path)
    return cfg_path


def _check_scenario_file(cfg_path: Path) -> None:
    """Check that a ``.cfg`` looks like a ViZDoom config and that its WAD is present."""
    try:
        text = cfg_path.read_text(errors="replace")
    except OSError as err:
        raise ScenarioError(f"env.scenario: cannot read {cfg_path}: {err.strerror}") from err
    keys = {
        m.group(1).lower().replace("_", "")
        for m in re.finditer(r"^\s*([A-Za-z_]+)\s*=", text, flags=re.MULTILINE)
    }
    known = {"doomscenariopath", "doomgamepath", "availablebuttons", "doommap", "episodetimeout"}
    if not keys & known:
        raise ScenarioError(
            f"env.scenario: {cfg_path} is not a ViZDoom config (no doom_scenario_path, "
            "available_buttons or doom_map key)"
        )
    match = re.search(r"^\s*doom_?scenario_?path\s*=\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
    if match:
        wad = Path(match.group(1))
        wad = wad if wad.is_absolute() else cfg_path.parent / wad
        if not wad.is_file():
            raise ScenarioError(f"env.scenario: {cfg_path} needs WAD file {wad}, which is missing")
