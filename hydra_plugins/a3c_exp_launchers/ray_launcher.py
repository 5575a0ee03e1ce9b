"""hydra-ray-launcher, able to start one job at a time (for the a3c_optuna sweeper).

The stock ``RayLauncher.launch`` runs a batch of jobs as Ray tasks and waits for all of them.
``BusyRayLauncher`` keeps that, and adds the calls the sweeper uses to keep every slot busy:
``start_job`` submits one job as a Ray task (the stock task function, so each job is run as
the stock launcher runs it), ``job_result`` waits for it, ``stop_jobs`` cancels tasks and
``job_slots`` is the cluster's CPUs over the CPUs a job reserves.

Hydra imports this module at every start-up (its plugin scan), so Ray is imported only when a
job is started, and without hydra-ray-launcher installed the class is simply not defined. The
preset ``hydra/launcher=ray`` names this class as its ``_target_``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict

from .launchers import _Finished, completed_result, log, output_dir

try:
    from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
except ImportError:  # hydra-ray-launcher not installed: no Ray launcher
    RayLauncher = None  # type: ignore[assignment,misc]


class _RayJob:
    """A job running as a Ray task."""

    def __init__(self, ref: Any):
        self.ref = ref

    def done(self) -> bool:
        import ray

        ready, _ = ray.wait([self.ref], timeout=0)
        return bool(ready)


if RayLauncher is not None:

    class BusyRayLauncher(RayLauncher):
        """hydra-ray-launcher with single-job calls for sweepers that fill slots as they free."""

        _started = False

        def _ensure_ray(self) -> None:
            from hydra_plugins.hydra_ray_launcher._launcher_util import start_ray

            assert self.config is not None
            if not self._started:
                setup_globals()
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
                Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
                self.ray_cfg.init.setdefault("object_store_memory", 78643200)  # as the stock one
                start_ray(self.ray_cfg.init)
                self._started = True

        def _job_config(self, overrides: Sequence[str], idx: int) -> DictConfig:
            assert self.hydra_context is not None and self.config is not None
            job_cfg = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(job_cfg):
                job_cfg.hydra.job.id = f"job_id_for_{idx}"
                job_cfg.hydra.job.num = idx
            return job_cfg

        @staticmethod
        def _remote(job_cfg: DictConfig) -> dict[str, Any]:
            """The job's ``ray.remote`` options, resolved in its own config (``${workers}``)."""
            launcher = OmegaConf.to_container(job_cfg.hydra.launcher, resolve=True)
            assert isinstance(launcher, dict)
            return dict(launcher["ray"]["remote"] or {})

        def job_dir(self, overrides: Sequence[str], idx: int) -> Path:
            """Where job ``idx`` with these overrides writes its outputs."""
            return output_dir(self._job_config(overrides, idx))

        def job_slots(self, overrides: Sequence[str]) -> int:
            """The cluster's CPUs over the CPUs one job reserves (at least 1)."""
            import ray

            self._ensure_ray()
            remote = self._remote(self._job_config(overrides, 0))
            per_job = float((remote or {}).get("num_cpus") or 1)
            return max(1, int(ray.cluster_resources().get("CPU", 1) // per_job))

        def start_job(self, overrides: Sequence[str], idx: int) -> Any:
            """Submit job ``idx`` as a Ray task now (a job completed before is not run again)."""
            from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray

            self._ensure_ray()
            assert self.hydra_context is not None and self.task_function is not None
            job_cfg = self._job_config(overrides, idx)
            done = completed_result(output_dir(job_cfg), overrides)
            log.info(
                f"\t#{idx} : {' '.join(filter_overrides(overrides))}" + (" (done)" if done else "")
            )
            if done is not None:
                return _Finished(done)
            remote = OmegaConf.create(self._remote(job_cfg))
            ref = launch_job_on_ray(
                self.hydra_context, remote, job_cfg, self.task_function, Singleton.get_state()
            )
            return _RayJob(ref)

        def job_result(self, job: Any, overrides: Sequence[str]) -> JobReturn:
            """The job's ``JobReturn``; a task that failed or was lost counts as a failed job."""
            import ray

            if isinstance(job, _Finished):
                return job.result
            try:
                return ray.get(job.ref)
            except Exception as err:
                return JobReturn(
                    overrides=list(overrides), status=JobStatus.FAILED, _return_value=err
                )

        def stop_jobs(self, jobs: Sequence[Any]) -> None:
            """Cancel the jobs' tasks (Ray interrupts a running task as Ctrl-C would)."""
            import ray

            for job in jobs:
                if isinstance(job, _RayJob):
                    ray.cancel(job.ref)
