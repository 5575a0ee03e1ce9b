"""Configs of the a3c-exp launchers, registered as ``hydra/launcher`` options.

The presets ``conf/hydra/launcher/parallel_local.yaml`` and ``slurm.yaml`` build on these.
"""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf


@dataclass
class BoundedLocalQueueConf(LocalQueueConf):
    """submitit's local executor, with at most ``array_parallelism`` jobs running at once."""

    _target_: str = "hydra_plugins.a3c_exp_launchers.launchers.BoundedLocalLauncher"
    # Jobs running at the same time; null: CPUs // the largest cpus_per_task of the sweep's
    # jobs, at least 1. (submitit's local executor alone starts every job at once.)
    array_parallelism: int | None = None
    # Seconds between two looks at the running jobs.
    poll_s: float = 0.2


@dataclass
class PerJobSlurmQueueConf(SlurmQueueConf):
    """submitit's Slurm executor; resources (cpus_per_task, ...) resolved in each job's config."""

    _target_: str = "hydra_plugins.a3c_exp_launchers.launchers.PerJobSlurmLauncher"


ConfigStore.instance().store(
    group="hydra/launcher",
    name="a3c_submitit_local",
    node=BoundedLocalQueueConf(),
    provider="a3c_exp",
)
ConfigStore.instance().store(
    group="hydra/launcher",
    name="a3c_submitit_slurm",
    node=PerJobSlurmQueueConf(),
    provider="a3c_exp",
)
