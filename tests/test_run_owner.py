"""The Run's own decisions, against a scripted pool (no processes)."""

from __future__ import annotations

from pathlib import Path

from a3c_exp.algo.global_model import GlobalModel
from a3c_exp.checkpoint import CheckpointManager, Counts, Snapshot
from a3c_exp.config import as_plain_data, load_config
from a3c_exp.messages import Update
from a3c_exp.reporting import RunStats
from a3c_exp.reporting.sinks import NullSink
from a3c_exp.runtime.exit_codes import EXIT_FAILED
from a3c_exp.runtime.pool import PoolError
from a3c_exp.runtime.run import Run


class ScriptedPool:
    """Sends a 100-step update per poll; its snapshot fails once ``lost`` is set."""

    def __init__(self, module: GlobalModel):
        self.module, self.restarts, self.lost, self.updates = module, 0, False, 0
        self.hparams = module.hparams

    def start(self) -> None:
        pass

    def poll(self, timeout: float) -> list[Update]:
        self.updates += 1
        self.lost = self.updates > 3  # the parameter server is gone after the third update
        return [Update(0, 100, (), 0.0, 0.0, 0.0, 0.0, 0.0, False)]

    def supervise(self) -> str | None:
        return None

    def snapshot(self) -> Snapshot:
        if self.lost:
            raise PoolError("the parameter server is unreachable")
        weights = {k: v.clone() for k, v in self.module.state_dict().items()}
        return Snapshot(weights, {"state": {}, "param_groups": []}, "shared_adam", self.counts())

    def counts(self) -> Counts:
        return Counts(self.updates, 0, 100 * self.updates, 0)

    def metrics(self) -> dict:
        return {}

    def stop(self, grace: float) -> list[Update]:
        return []

    def close(self) -> None:
        pass


def test_a_failed_periodic_checkpoint_ends_the_run_as_worker_failed(compose_train, tmp_path):
    cfg = load_config(compose_train(["env=cartpole", "checkpoint_every=500", "total_steps=100000"]))
    pool = ScriptedPool(GlobalModel(as_plain_data(cfg), [4], 2))
    run = Run(
        cfg=cfg,
        pool=pool,
        sink=NullSink(),
        stats=RunStats(1, {}),
        checkpoints=CheckpointManager(Path(tmp_path) / "checkpoints", 3, None),
    )
    result = run.run()
    assert result.stop_reason == "worker_failed" and result.exit_code == EXIT_FAILED
    assert result.summary["stop_reason"] == "worker_failed"
    assert result.summary["total_steps"] < cfg.total_steps
