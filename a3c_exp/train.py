"""Training entry point: ``python -m a3c_exp.train [overrides]`` (console script ``a3c-train``).

Hydra composes the config (its own override and sweep grammar, config groups and search path);
``load_config`` makes it one frozen, typed ``TrainConfig``; ``prepare`` fills in the values
derived from the run's surroundings (resume path, sweep group, CPUs) once, before anything
starts; then the run is built and started. It returns the sweep objective.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

from a3c_exp.config import ConfigError, register_configs
from a3c_exp.files import fault_line, machine_fault

if TYPE_CHECKING:
    from hydra.conf import HydraConf

    from a3c_exp.config import TrainConfig
    from a3c_exp.runtime.run import RunResult

log = logging.getLogger("a3c_exp")


def prepare(cfg: TrainConfig, hydra_cfg: HydraConf) -> TrainConfig:
    """Set the derived values (resume path, sweep group, worker CPUs) and return the result."""
    from hydra.types import RunMode

    from a3c_exp.config import LocalRuntimeConfig
    from a3c_exp.runtime.cpus import worker_cpus
    from a3c_exp.sweep import sweep_group

    run_dir = Path(hydra_cfg.runtime.output_dir)
    resume = cfg.resume
    if resume == "latest":
        latest = run_dir / "checkpoints" / "last.ckpt"
        if not latest.is_file():
            raise ConfigError(
                f"resume='latest': no {latest} (set hydra.run.dir to the run to continue)"
            )
        resume = str(latest)
    elif resume is not None:
        resume = str(Path(resume).expanduser().resolve())
    logger = dict(cfg.logger)
    wandb = logger.get("wandb")
    if hydra_cfg.mode == RunMode.MULTIRUN and wandb is not None and wandb.group is None:
        # every job of a sweep in one W&B group
        logger["wandb"] = replace(wandb, group=sweep_group(Path(hydra_cfg.sweep.dir)))
    runtime = cfg.runtime
    if isinstance(runtime, LocalRuntimeConfig):
        cpus = worker_cpus(runtime.pin_cpus, cfg.workers, runtime.worker_cpus)
        runtime = replace(runtime, worker_cpus=cpus)
    return replace(cfg, resume=resume, logger=logger, runtime=runtime)


def train(composed: DictConfig) -> RunResult:
    """Run one training job and return how it ended (exit code, summary, checkpoint)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from a3c_exp.config import load_config
    from a3c_exp.runtime.checks import check_writable, validate

    # validate before the heavy imports below: bad input is refused in about a second
    hydra_cfg = HydraConfig.get()
    # a log file the machine can no longer write to (disk full) must not print a traceback per
    # line: the run stops on that fault itself and says why in one line
    logging.raiseExceptions = False
    cfg = validate(prepare(load_config(composed), hydra_cfg))
    run_dir = Path(hydra_cfg.runtime.output_dir)
    check_writable(run_dir)

    from a3c_exp.overrides import run_name
    from a3c_exp.reporting.plots import plot_learning_curves
    from a3c_exp.runtime.build import dry_run, run_training

    if cfg.dry_run:
        return dry_run(cfg, run_dir)

    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if in_sweep:
        warn_if_oversubscribed(hydra_cfg.launcher, cfg.workers)
    name = run_name(cfg.env.name, cfg.workers, hydra_cfg.overrides.task)
    result = run_training(cfg, run_dir, name)
    if not in_sweep and result.fault is None:  # a sweep draws its jobs' curves in its summary
        try:
            plot_learning_curves([run_dir], run_dir / "learning_curve.png", [name])
        except OSError as err:
            if not machine_fault(err):
                raise
            log.warning("learning_curve.png not written: %s", fault_line(err, run_dir))
    return result


class JobFailed(RuntimeError):
    """A sweep job that failed: Hydra records it and the sweep goes on with the other jobs."""


class MachineFault(JobFailed):
    """A sweep job that a fault of the machine stopped (no space, a read-only or vanished
    directory): the sweeper records it apart and does not count its trial."""


def warn_if_oversubscribed(launcher_cfg: Any, workers: int) -> None:
    """Warn when parallel sweep jobs times workers per job exceed the CPUs."""
    from a3c_exp.runtime.cpus import available_cpus

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


INFRASTRUCTURE = "infrastructure"
"""A sweep record's status for a job that a fault of the machine stopped."""


def _status(exit_code: int, stop_reason: str) -> str:
    """A sweep record's status: completed, pruned (stopped by the sweep's pruner), or why not."""
    from a3c_exp.runtime.exit_codes import EXIT_OK

    if stop_reason in ("machine_fault", "dry_run"):
        return INFRASTRUCTURE if stop_reason == "machine_fault" else stop_reason
    if exit_code != EXIT_OK:
        return stop_reason
    return "pruned" if stop_reason == "pruned" else "completed"


def _objective(summary: dict[str, Any], key: str) -> float:
    value = summary.get(key)
    return float(value) if isinstance(value, int | float) else float("nan")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _hydra_entry(cfg: DictConfig) -> float:
    """Run the job; record it when part of a sweep; turn failures into exit codes or JobFailed."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from a3c_exp.runtime.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK
    from a3c_exp.sweep import completed_record, write_job_record

    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if in_sweep:
        done = completed_record(Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task))
        if done is not None:  # a sweep run again over its own directory
            log.info("job %s completed before (job.json): not run again", done.get("job"))
            return done.get("objective")
    record: dict[str, Any] = {
        "job": hydra_cfg.job.num if in_sweep else 0,
        "overrides": list(hydra_cfg.overrides.task),
        "status": "failed",
        "objective": None,
        "error": None,
    }
    start = time.monotonic()
    record["started_at"] = time.time()
    exit_code = 1
    try:
        result = train(cfg)
        record.update(
            status=_status(result.exit_code, result.stop_reason),
            objective=_objective(result.summary, cfg.objective),
            wall_time_s=result.summary.get("wall_time"),
            steps_per_s=result.summary.get("steps_per_second"),
            total_steps=result.summary.get("total_steps"),
        )
        exit_code = result.exit_code
        if result.fault is not None:
            print(f"error: {result.fault}", file=sys.stderr)
            record["error"] = result.fault
        elif exit_code != EXIT_OK:
            record["error"] = f"stopped: {result.stop_reason}"
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        record["error"], exit_code = str(err), EXIT_BAD_INPUT
    except Exception as err:
        record["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
        raise
    finally:
        record.setdefault("wall_time_s", time.monotonic() - start)
        record["ended_at"] = time.time()
        if in_sweep:
            try:
                write_job_record(Path(hydra_cfg.runtime.output_dir), record)
            except OSError as err:  # the sweeper then learns the job's end from its return
                log.warning("job.json not written: %s", err)
    if exit_code != EXIT_OK:
        if in_sweep and exit_code != EXIT_INTERRUPTED:
            # Hydra records the failure and the other jobs of the sweep still run; an
            # interruption (Ctrl-C, SIGTERM) stops the whole sweep instead.
            failure = MachineFault if record["status"] == INFRASTRUCTURE else JobFailed
            raise failure(record["error"] or f"exit code {exit_code}")
        sys.exit(exit_code)
    return record["objective"]


def main() -> None:
    """Console entry point: register the schemas, hand over to Hydra, report its errors."""
    from a3c_exp.runtime.cpus import available_cpus
    from a3c_exp.runtime.exit_codes import run_entry_point

    register_configs(cpu_count=available_cpus)
    run_entry_point(_hydra_entry)


if __name__ == "__main__":
    main()
