"""``run_training``: build a run's parts, run it, and close every part on every exit path.

The parts are the resume state (read once, typed), the worker pool (which owns the global
model and its optimizer), the statistics, the checkpoint manager and the metric sinks. They
are built in the order that lets slow starts overlap: the pool first, so a fork server
imports the worker code while the sinks open (the W&B run takes a second or two).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from a3c_exp.algo.terms import term_metric_names
from a3c_exp.checkpoint import (
    CheckpointError,
    CheckpointManager,
    ResumeState,
    read_resume_state,
)
from a3c_exp.config import ConfigError, TrainConfig
from a3c_exp.envs import EnvSpec, probe_env_spec
from a3c_exp.files import fault_line, machine_fault
from a3c_exp.reporting import RunStats, build_sinks
from a3c_exp.reporting.sinks import CompositeSink
from a3c_exp.runtime.cpus import available_cpus
from a3c_exp.runtime.exit_codes import EXIT_FAILED, EXIT_OK
from a3c_exp.runtime.pool import WorkerPool
from a3c_exp.runtime.run import Run, RunResult, with_last_checkpoint

log = logging.getLogger("a3c_exp")


def run_training(cfg: TrainConfig, run_dir: Path, name: str) -> RunResult:
    """Train with ``cfg`` in ``run_dir`` (W&B run ``name``) until a stop condition.

    Raises ConfigError (one line) for input found bad only now: an unreadable or mismatching
    resume checkpoint, a network too large for the frames, an unreachable Ray cluster.
    """
    try:
        resume = read_resume_state(cfg) if cfg.resume else None
    except CheckpointError as err:  # names the file itself
        raise ConfigError(f"resume: {err}") from None
    except ValueError as err:
        raise ConfigError(f"resume={cfg.resume!r}: {err}") from None
    counters = resume.counters if resume is not None else {}
    if cfg.workers > 4 * available_cpus():
        log.warning("workers=%d on %d CPUs: heavy oversubscription", cfg.workers, available_cpus())
    seed_everything(cfg.seed)
    env_spec = probe_env_spec(cfg.env, workdir=str(run_dir / ".vizdoom"))
    stats = RunStats(cfg.env.frame_skip, counters)
    pool: WorkerPool | None = None
    sink: CompositeSink | None = None
    exit_code = EXIT_FAILED
    try:
        pool = make_pool(cfg, env_spec, run_dir, lambda: stats.global_step)
        if resume is not None:
            restore(pool, resume)
            log.info("resuming from %s at step %s", resume.path, f"{stats.global_step:,}")
        term_keys = [
            key for slot, term, _ in pool.loss_terms() for key in term_metric_names(slot, term)
        ]
        sink = build_sinks(cfg, run_dir, name, stats.global_step, counters, term_keys)
        checkpoints = CheckpointManager(
            run_dir / "checkpoints",
            cfg.keep_checkpoints,
            counters.get("best_checkpoint_reward"),
            (Path(resume.path), stats.global_step) if resume is not None else None,
        )
        extra = {"sink_states": sink.states(), "run_dir": str(run_dir)}
        run = Run(cfg, pool, sink, stats, checkpoints, extra, run_dir)
        result = run.run()
        exit_code = result.exit_code
        saved = {"last": result.checkpoint, "best": checkpoints.best_path}
        sink.log_checkpoints({k: p for k, p in saved.items() if p is not None and p.exists()})
    except BaseException:
        if sink is not None:
            sink.close(exit_code)
        raise
    finally:
        if pool is not None:
            pool.close()
    return close_sinks(sink, result, run_dir, checkpoints)


def close_sinks(
    sink: CompositeSink, result: RunResult, run_dir: Path, checkpoints: CheckpointManager
) -> RunResult:
    """Close the sinks after the run; their last rows or events that the machine refuses to
    write (disk full, directory gone) make the run's result that fault, in one line."""
    try:
        sink.close(result.exit_code)
    except OSError as err:
        if not machine_fault(err):
            raise
        if result.fault is None:
            fault = with_last_checkpoint(fault_line(err, run_dir), checkpoints.last_saved)
            return replace(result, stop_reason="machine_fault", exit_code=EXIT_FAILED, fault=fault)
    return result


def dry_run(cfg: TrainConfig, run_dir: Path) -> RunResult:
    """Everything a run checks before its workers start, and nothing after: the env opened
    once, the network and loss terms built, each sink's class and keys checked; one line says
    what would run. Raises ConfigError (one line) as a real run would."""
    from a3c_exp.algo.global_model import GlobalModel
    from a3c_exp.config import as_plain_data
    from a3c_exp.reporting.sinks import check_sinks

    env_spec = probe_env_spec(cfg.env, workdir=str(run_dir / ".vizdoom"))
    try:
        model = GlobalModel(as_plain_data(cfg), list(env_spec.obs_shape), env_spec.n_actions)
    except ConfigError:
        raise
    except ValueError as err:  # the network does not fit the env's frames, ...
        raise ConfigError(str(err)) from None
    check_sinks(cfg.logger)
    parameters = sum(p.numel() for p in model.parameters())
    terms = ", ".join(key for key, _, _ in model.loss_terms()) or "none"
    log.info(
        "dry run: would train %s (observations %s, %d actions) with %d workers x %d envs, "
        "%s parameters, loss terms: %s, sinks: console, metrics.csv%s; nothing trained",
        cfg.env.name,
        tuple(env_spec.obs_shape),
        env_spec.n_actions,
        cfg.workers,
        cfg.envs_per_worker,
        f"{parameters:,}",
        terms,
        "".join(f", {name}" for name in cfg.logger),
    )
    return RunResult("dry_run", EXIT_OK, None, {"stop_reason": "dry_run"})


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch in the main process (the global network's initial weights);
    and keep torch to one thread here, as in every worker."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)


def make_pool(
    cfg: TrainConfig, env_spec: EnvSpec, run_dir: Path, global_step: Callable[[], int]
) -> WorkerPool:
    """The worker pool of ``runtime.kind`` (Ray is imported only when asked for)."""
    try:
        if cfg.runtime.kind == "ray":
            from a3c_exp.runtime.ray_pool import RayPool

            return RayPool(cfg, env_spec, run_dir, global_step)
        from a3c_exp.runtime.local_pool import LocalPool

        return LocalPool(cfg, env_spec, run_dir, global_step)
    except ConfigError:
        raise
    except ValueError as err:  # the network does not fit the env's frames, ...
        raise ConfigError(str(err)) from None


def restore(pool: WorkerPool, resume: ResumeState) -> None:
    """Continue the pool from ``resume``; a network that does not match is bad input."""
    try:
        pool.restore(resume)
    except ValueError as err:
        raise ConfigError(f"resume={resume.path!r}: {err}") from None
