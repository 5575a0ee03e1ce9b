"""Training entry point: ``python -m a3c_exp.train [overrides]`` (console script ``a3c-train``).

Composes the config with Hydra, validates it, builds the global model and shared optimizer, runs
the asynchronous launcher and returns the sweep objective (mean reward of the last 100 episodes).
"""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from a3c_exp.config import ConfigError, register_configs
from a3c_exp.overrides import check_group_overrides

log = logging.getLogger("a3c_exp")


def train(cfg: DictConfig) -> float:
    """Run one training job; returns the last-100-episode mean reward (NaN if no episode ended)."""
    import numpy as np
    import torch
    from hydra.core.hydra_config import HydraConfig

    from a3c_exp.algo.module import A3CModule
    from a3c_exp.checkpoint import CheckpointManager, load_checkpoint
    from a3c_exp.config import available_cpus, check_writable, validate
    from a3c_exp.envs import probe_env_spec
    from a3c_exp.overrides import run_name
    from a3c_exp.reporting import RunStats, build_sinks
    from a3c_exp.reporting.plots import plot_learning_curves
    from a3c_exp.runtime.launcher import EXIT_OK, AsyncLauncher

    data = validate(cfg)
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    check_writable(run_dir)
    if data["workers"] > 4 * available_cpus():
        log.warning(
            "workers=%d on %d CPUs: heavy oversubscription", data["workers"], available_cpus()
        )

    resume_payload = load_checkpoint(data["resume"]) if data["resume"] else None
    random.seed(data["seed"])
    np.random.seed(data["seed"])
    torch.manual_seed(data["seed"])
    torch.set_num_threads(1)

    env_spec = probe_env_spec(data["env"], workdir=str(run_dir / ".vizdoom"))
    try:
        module = A3CModule(data, list(env_spec.obs_shape), env_spec.n_actions)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    module.net.share_memory()
    optimizer = module.configure_optimizers()
    counters = {}
    if resume_payload is not None:
        try:
            module.restore(resume_payload, optimizer)
        except ValueError as err:
            raise ConfigError(f"resume={data['resume']!r}: {err}") from None
        counters = resume_payload["a3c"]
        log.info("resuming from %s at step %s", data["resume"], f"{counters['global_step']:,}")

    name = run_name(data["env"]["name"], data["workers"], hydra_cfg.overrides.task)
    sink, wandb_id = build_sinks(
        data, run_dir, name, int(counters.get("global_step", 0)), counters.get("wandb_run_id")
    )
    checkpoints = CheckpointManager(
        run_dir / "checkpoints", data["keep_checkpoints"], counters.get("best_mean_reward")
    )
    exit_code = 1
    try:
        launcher = AsyncLauncher(
            module=module,
            optimizer=optimizer,
            cfg=data,
            env_spec=env_spec,
            run_dir=run_dir,
            sink=sink,
            stats=RunStats(data["env"]["frame_skip"], counters),
            checkpoints=checkpoints,
            extra_counters={"wandb_run_id": wandb_id, "run_dir": str(run_dir)},
        )
        result = launcher.run()
        exit_code = result.exit_code
        saved = {"last": result.checkpoint, "best": checkpoints.best_path}
        sink.log_checkpoints({k: p for k, p in saved.items() if p is not None and p.exists()})
    finally:
        sink.close(exit_code)
    plot_learning_curves([run_dir], run_dir / "learning_curve.png", [name])
    if result.exit_code != EXIT_OK:
        sys.exit(result.exit_code)
    return float(result.summary.get("final_mean_reward", float("nan")))


class JobFailed(RuntimeError):
    """A sweep job that failed: Hydra records it and the sweep goes on with the other jobs."""


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _hydra_entry(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        return train(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        if in_sweep:
            raise JobFailed(str(err)) from None
        sys.exit(2)
    except SystemExit as exit_:
        if in_sweep and exit_.code:
            raise JobFailed(f"training exited with code {exit_.code}") from None
        raise


def main() -> None:
    """Console entry point: check group names, register schemas, hand over to Hydra."""
    error = check_group_overrides(sys.argv[1:])
    if error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    register_configs()
    _hydra_entry()


if __name__ == "__main__":
    main()
