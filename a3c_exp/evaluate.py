"""Evaluation entry point: ``python -m a3c_exp.evaluate checkpoint=<path>`` (console ``a3c-eval``).

Rebuilds the environment and the network from the checkpoint alone, plays ``episodes`` episodes,
prints mean ± std reward and length, writes ``eval.json`` (and a GIF with ``record=true``) in the
output directory. The checkpoint is data: a built-in network or env is built by name, and a
class of your own it names (``_target_``, or an env id ``package.module:Env-v0``) is imported
only from ``trusted_packages=[my_pkg]`` (this project's own is always trusted); anything else
is refused in one line naming the class and the key to set, exit 2.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

if TYPE_CHECKING:
    from a3c_exp.config import EnvConfig

log = logging.getLogger("a3c_exp")


def play_episodes(
    module: Any,
    env_cfg: EnvConfig,
    episodes: int,
    greedy: bool,
    seed: int,
    workdir: Path,
    record_path: Path | None = None,
    max_steps: int = 100_000,
    observations: list[Any] | None = None,
    watch: Callable[[Any, int, bool], None] | None = None,
    trusted: Collection[str] | None = None,
) -> list[dict[str, float]]:
    """Play ``episodes`` episodes with the module's network; return reward and length of each.

    ``observations``: a list that gets, per episode, the tensor of its observations stacked
    (what ``scripts/checkpoint_drift.py`` replays through other checkpoints). ``watch``: called
    with the env, the steps taken and whether the episode has ended, after each reset (0 steps)
    and after each step (what ``scripts/doom_shots.py`` reads the game's counters with).
    ``trusted``: the packages an env of the checkpoint's own may be imported from.
    """
    import numpy as np
    import torch

    from a3c_exp.envs import make_env

    render_mode = "rgb_array" if record_path is not None else None
    env = make_env(env_cfg, rank=0, workdir=str(workdir), render_mode=render_mode, trusted=trusted)
    generator = torch.Generator().manual_seed(seed)
    results, frames = [], []
    net = module.net.eval()
    try:
        for episode in range(episodes):
            # seeded once: the episodes that follow are reproducible from it, and a seeded
            # ViZDoom reset restarts the engine (~0.16 s an episode)
            obs, _ = env.reset(seed=seed if episode == 0 else None)
            state = net.initial_state(1)
            total, length, done, seen = 0.0, 0, False, []
            if watch is not None:
                watch(env, length, done)
            while not done and length < max_steps:
                if observations is not None:
                    seen.append(torch.as_tensor(obs))
                if record_path is not None and episode == 0:
                    frames.append(np.asarray(env.render()).copy())
                with torch.inference_mode():
                    logits, _, state = net(torch.as_tensor(obs).unsqueeze(0), state)
                probs = logits.softmax(-1)[0]
                action = (
                    int(probs.argmax())
                    if greedy
                    else int(torch.multinomial(probs, 1, generator=generator))
                )
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(info.get("score_reward", reward))
                length += 1
                done = terminated or truncated
                if watch is not None:
                    watch(env, length, done)
            results.append({"reward": total, "length": length})
            if observations is not None:
                observations.append(torch.stack(seen))
    finally:
        env.close()
    if record_path is not None and frames:
        import imageio.v2 as imageio

        imageio.mimsave(record_path, frames, duration=1000 / 35 * env_cfg.frame_skip)
    return results


def evaluate(composed: DictConfig) -> dict[str, Any]:
    """Load the checkpoint named by ``checkpoint=``, play, report and write ``eval.json``."""
    from hydra.core.hydra_config import HydraConfig

    from a3c_exp.config import ConfigError, load_eval_config, parse_env
    from a3c_exp.files import atomic_write_text

    cfg = load_eval_config(composed)  # bad input refused before torch is imported

    import numpy as np

    from a3c_exp.checkpoint import CheckpointError, load_checkpoint

    path = Path(cfg.checkpoint).expanduser()
    load_checkpoint(path)  # a missing or unreadable file is refused before Lightning's import

    from a3c_exp.algo.module import module_from_checkpoint, trusted_set

    trusted = trusted_set(cfg.trusted_packages)
    module, _ = module_from_checkpoint(path, cfg.trusted_packages)
    try:
        env_cfg = parse_env(module.hparams.cfg.get("env", {}))
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {path}: refused: {err}") from None
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path = out_dir / "episode.gif" if cfg.record else None
    results = play_episodes(
        module,
        env_cfg,
        cfg.episodes,
        cfg.greedy,
        cfg.seed,
        out_dir / ".vizdoom",
        record_path,
        cfg.max_steps,
        trusted=trusted,
    )
    rewards = np.array([r["reward"] for r in results])
    lengths = np.array([r["length"] for r in results])
    report = {
        "checkpoint": str(path),
        "env": env_cfg.name,
        "episodes": len(results),
        "greedy": bool(cfg.greedy),
        "mean_reward": float(rewards.mean()),
        "std_reward": float(rewards.std()),
        "mean_length": float(lengths.mean()),
        "std_length": float(lengths.std()),
        "video": str(record_path) if record_path else None,
        "per_episode": results,
    }
    atomic_write_text(out_dir / "eval.json", json.dumps(report, indent=2))
    log.info(
        "%s: reward %.3f ± %.3f, length %.1f ± %.1f over %d episodes -> %s",
        env_cfg.name,
        report["mean_reward"],
        report["std_reward"],
        report["mean_length"],
        report["std_length"],
        len(results),
        out_dir / "eval.json",
    )
    return report


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def _hydra_entry(cfg: DictConfig) -> None:
    from a3c_exp.runtime.exit_codes import EXIT_BAD_INPUT

    try:
        evaluate(cfg)
    except ValueError as err:  # ConfigError, CheckpointError: one line each
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def main() -> None:
    """Console entry point: hand over to Hydra; its composition errors as one line, exit 2."""
    from a3c_exp.runtime.exit_codes import run_entry_point

    run_entry_point(_hydra_entry)


if __name__ == "__main__":
    main()
