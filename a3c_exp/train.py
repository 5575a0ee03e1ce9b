"""Training entry point: ``python -m a3c_exp.train [overrides]`` (console script ``a3c-train``).

Composes the config with Hydra, validates it, builds the global model and shared optimizer, runs
the asynchronous launcher and returns the sweep objective (mean reward of the last 100 episodes).
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

from a3c_exp.config import ConfigError, register_configs
from a3c_exp.overrides import check_group_overrides

if TYPE_CHECKING:
    from a3c_exp.runtime.launcher import RunResult

log = logging.getLogger("a3c_exp")


def train(cfg: DictConfig) -> RunResult:
    """Run one training job and return how it ended (exit code, summary, checkpoint)."""
    import numpy as np
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from a3c_exp.algo.module import A3CModule
    from a3c_exp.checkpoint import CheckpointError, CheckpointManager, load_checkpoint
    from a3c_exp.config import available_cpus, check_writable, validate
    from a3c_exp.envs import probe_env_spec
    from a3c_exp.overrides import run_name
    from a3c_exp.reporting import RunStats, build_sinks
    from a3c_exp.reporting.plots import plot_learning_curves
    from a3c_exp.runtime.launcher import AsyncLauncher
    from a3c_exp.sweep import sweep_group

    data = validate(cfg)
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    check_writable(run_dir)
    if data["workers"] > 4 * available_cpus():
        log.warning(
            "workers=%d on %d CPUs: heavy oversubscription", data["workers"], available_cpus()
        )

    if data["resume"] == "latest":
        latest = run_dir / "checkpoints" / "last.ckpt"
        if not latest.is_file():
            raise ConfigError(
                f"resume='latest': no {latest} (set hydra.run.dir to the run to continue)"
            )
        data["resume"] = str(latest)
    try:
        resume_payload = load_checkpoint(data["resume"]) if data["resume"] else None
    except CheckpointError as err:
        raise ConfigError(f"resume: {err}") from None
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

    if hydra_cfg.mode == RunMode.MULTIRUN:
        warn_if_oversubscribed(hydra_cfg.launcher, data["workers"])
        if data["logger"]["group"] is None:  # runs of one sweep share a W&B group
            data["logger"]["group"] = sweep_group(Path(hydra_cfg.sweep.dir))
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
    return result


class JobFailed(RuntimeError):
    """A sweep job that failed: Hydra records it and the sweep goes on with the other jobs."""


def warn_if_oversubscribed(launcher_cfg: Any, workers: int) -> None:
    """Warn when parallel sweep jobs times workers per job exceed the CPUs."""
    from a3c_exp.config import available_cpus

    parallel = 1
    for key in ("n_jobs", "array_parallelism"):
        value = launcher_cfg.get(key) if hasattr(launcher_cfg, "get") else None
        if isinstance(value, int) and value > 0:
            parallel = value
    if parallel * workers > available_cpus():
        log.warning(
            "%d parallel jobs x %d workers = %d processes on %d CPUs: jobs will slow each other",
            parallel,
            workers,
            parallel * workers,
            available_cpus(),
        )


def _objective(summary: dict[str, Any], key: str) -> float:
    value = summary.get(key)
    return float(value) if isinstance(value, int | float) else float("nan")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _hydra_entry(cfg: DictConfig) -> float:
    """Run the job; record it when part of a sweep; turn failures into exit codes or JobFailed."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from a3c_exp.runtime.launcher import EXIT_INTERRUPTED, EXIT_OK
    from a3c_exp.sweep import write_job_record

    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    record: dict[str, Any] = {
        "job": hydra_cfg.job.num if in_sweep else 0,
        "overrides": list(hydra_cfg.overrides.task),
        "status": "failed",
        "objective": None,
        "error": None,
    }
    start = time.monotonic()
    exit_code = 1
    try:
        result = train(cfg)
        record.update(
            status="completed" if result.exit_code == EXIT_OK else result.stop_reason,
            objective=_objective(result.summary, cfg.objective),
            wall_time_s=result.summary.get("wall_time"),
            steps_per_s=result.summary.get("steps_per_second"),
            total_steps=result.summary.get("total_steps"),
        )
        exit_code = result.exit_code
        if exit_code != EXIT_OK:
            record["error"] = f"stopped: {result.stop_reason}"
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        record["error"], exit_code = str(err), 2
    except Exception as err:
        record["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
        raise
    finally:
        record.setdefault("wall_time_s", time.monotonic() - start)
        if in_sweep:
            write_job_record(Path(hydra_cfg.runtime.output_dir), record)
    if exit_code != EXIT_OK:
        if in_sweep and exit_code != EXIT_INTERRUPTED:
            # Hydra records the failure and the other jobs of the sweep still run; an
            # interruption (Ctrl-C, SIGTERM) stops the whole sweep instead.
            raise JobFailed(record["error"] or f"exit code {exit_code}")
        sys.exit(exit_code)
    return record["objective"]


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
