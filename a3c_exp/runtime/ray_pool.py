"""``RayPool``: A3C workers as Ray actors, the global network in one parameter-server actor.

Each worker actor runs the same ``Learner`` as a local worker process (its own envs and local
network, rollouts, loss and gradients). The parameter server holds the global network and the
shared optimizer. A worker pulls the current weights, learns on its rollout, and pushes its
gradients; the server applies each push as it arrives (no barrier: A3C, not A2C) and answers
with the weights after the step, which the worker's next rollout starts from. Gradients and
weights travel through Ray's object store as one flat float32 array each (the parameters in
``parameters()`` order): numpy arrays pass through it without pickling their data, whereas a
list of torch tensors is pickled tensor by tensor (measured: 78 ms against ~3 ms for a push and
its reply of the 4.8 MB Doom network). The server handles one call at a time,
which is the step lock: a snapshot is always between two steps.

A worker actor works in calls of about ``runtime.report_seconds`` and returns its updates;
the pool resubmits until the run stops. A call that fails (the actor died, or its node went
away) or stays out past ``heartbeat_timeout`` counts against the worker's ``max_restarts``, and
a new actor takes its place wherever Ray finds room. A run with ``runtime.address: null`` starts
its own local Ray and shuts it down on every exit path.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from a3c_exp.algo.agent import Agent, AgentSpec
from a3c_exp.checkpoint import Counts, ResumeState, Snapshot
from a3c_exp.messages import Update
from a3c_exp.optim.shared import (
    adapt_learning_rate,
    build_optimizer,
    clone_state_dict,
    load_shared_state,
    optimizer_name,
)
from a3c_exp.runtime.pool import PoolBase, PoolError
from a3c_exp.runtime.worker import Learner, WorkerSpec, agent_spec, worker_spec
from a3c_exp.typing import Metrics

if TYPE_CHECKING:
    from a3c_exp.config import OptimConfig, TrainConfig
    from a3c_exp.envs import EnvSpec

log = logging.getLogger("a3c_exp")


class ParameterServer:
    """The global network (and loss terms) and its optimizer; applies each worker's gradients
    as they arrive."""

    def __init__(
        self,
        agent: AgentSpec,
        optim: OptimConfig,
        obs_shape: tuple[int, ...],
        n_actions: int,
        weights: dict[str, torch.Tensor],
        optimizer_state: dict[str, Any] | None,
        applied: int,
    ):
        torch.set_num_threads(1)
        self.agent = Agent(agent, obs_shape, n_actions)
        self.agent.load_state_dict(weights)
        self.params = list(self.agent.parameters())
        self.optimizer = build_optimizer(optim, self.params)  # the run's only optimizer
        if optimizer_state is not None:
            load_shared_state(self.optimizer, optimizer_state)
        self.applied = int(applied)
        self.skipped = self.env_steps = self.episodes = 0
        self._step_seconds = 0.0
        self._steps = 0

    def pull(self) -> np.ndarray:
        """The current weights, flat."""
        return parameters_to_vector(self.params).detach().numpy()

    def push(
        self, grads: np.ndarray, steps: int, episodes: int, kl: float = math.nan
    ) -> tuple[np.ndarray, float]:
        """Apply one worker's flat gradients with the shared optimizer and count them with
        their rollout's env steps and episodes; the weights after it, and the learning rate
        of the step (first set from the worker's measured policy change ``kl`` and the steps
        learned from, ``optim.shared.adapt_learning_rate``)."""
        start = time.perf_counter()
        flat = torch.from_numpy(np.array(grads))  # a writable copy of the store's buffer
        offset = 0
        for param in self.params:
            param.grad = flat[offset : offset + param.numel()].view_as(param)
            offset += param.numel()
        learning_rate = adapt_learning_rate(self.optimizer, kl, steps)
        self.optimizer.step()
        self.applied += 1
        self.env_steps += steps
        self.episodes += episodes
        self._step_seconds += time.perf_counter() - start
        self._steps += 1
        return self.pull(), learning_rate

    def skip(self, steps: int, episodes: int) -> None:
        """Count a worker's skipped update (NaN/inf loss or gradient) with its rollout."""
        self.skipped += 1
        self.env_steps += steps
        self.episodes += episodes

    def snapshot(self) -> Snapshot:
        """Weights, optimizer statistics and counts between two steps (keys as A3CModule)."""
        weights = {k: v.detach().clone() for k, v in self.agent.state_dict().items()}
        return Snapshot(
            weights,
            clone_state_dict(self.optimizer),
            optimizer_name(self.optimizer),
            self.counts()[0],
        )

    def counts(self) -> tuple[Counts, float]:
        """The counts, and the mean milliseconds one push took here (step included)."""
        counts = Counts(self.applied, self.skipped, self.env_steps, self.episodes)
        return counts, 1000 * self._step_seconds / max(self._steps, 1)


class ServerGlobalModel:
    """A worker's view of the parameter server: pull weights, push gradients, reuse the reply."""

    def __init__(self, server: Any):
        import ray

        self._ray = ray
        self.server = server
        self._weights: np.ndarray | None = None
        self._grads: np.ndarray | None = None

    def pull(self, local: Agent) -> None:
        """Load the weights of the last push's reply (or ask the server for them)."""
        if self._weights is None:
            self._weights = self._ray.get(self.server.pull.remote())
        with torch.no_grad():
            weights = torch.from_numpy(np.array(self._weights))  # writable copy
            vector_to_parameters(weights, local.parameters())
        self._weights = None

    def hand_over(self, local: Agent) -> None:
        """Take the local gradients, flat, for the next push."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in local.parameters()]
        self._grads = parameters_to_vector(grads).numpy()

    def step(self, steps: int, episodes: int, kl: float = math.nan) -> float:
        """Push the gradients with their counts; the reply holds the weights after the step
        and the learning rate it used."""
        self._weights, learning_rate = self._ray.get(
            self.server.push.remote(self._grads, steps, episodes, kl)
        )
        return learning_rate

    def skip(self, steps: int, episodes: int) -> None:
        """Have the server count a skipped update's rollout."""
        self._ray.get(self.server.skip.remote(steps, episodes))


class RayWorker:
    """A worker actor: a ``Learner`` that trains in calls of about ``seconds`` each."""

    def __init__(self, spec: WorkerSpec, server: Any):
        torch.set_num_threads(1)
        torch.manual_seed(spec.seed)
        self.learner = Learner(spec)
        self.model = ServerGlobalModel(server)

    def where(self) -> tuple[str, int]:
        """The Ray node and the process this worker runs in."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def train(self, seconds: float) -> list[Update]:
        """Learn for about ``seconds`` (at least one update); the updates."""
        deadline = time.monotonic() + seconds
        updates = [self.learner.update(self.model)]
        while time.monotonic() < deadline:
            updates.append(self.learner.update(self.model))
        return updates

    def close(self) -> None:
        """Stop the envs (and their engines) before the actor is killed."""
        self.learner.close()


class RayPool(PoolBase):
    """``cfg.workers`` worker actors and one parameter server on a local or joined Ray cluster.

    The main process holds the global network only until ``start`` hands its weights (initial,
    or restored) to the parameter server, which builds the run's one optimizer.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        env_spec: EnvSpec,
        run_dir: Path,
        global_step: Callable[[], int],
    ):
        import ray

        from a3c_exp.runtime.cpus import available_cpus

        super().__init__(cfg, env_spec, run_dir, global_step)
        self._ray = ray
        runtime = cfg.runtime
        self._own_cluster = runtime.address is None
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        shipped = package_dirs(user_packages(cfg))
        if shipped:  # your own package reaches the actors on every node, as Ray ships it
            init["runtime_env"] = {"py_modules": shipped}
        if self._own_cluster:
            init["num_cpus"] = available_cpus()
        else:
            init["address"] = runtime.address
        try:
            ray.init(logging_level=logging.WARNING, **init)
        except ConnectionError as err:  # e.g. something that is not Ray answered at the address
            from a3c_exp.config import ConfigError

            reason = str(err).strip().splitlines()[0]
            raise ConfigError(f"runtime.address={runtime.address!r}: {reason}") from None
        self._optimizer_state: dict[str, Any] | None = None
        self._counts = Counts()
        self.server: Any = None
        self._worker_class = ray.remote(RayWorker)
        self._actors: dict[int, Any] = {}
        self._calls: dict[Any, int] = {}  # in-flight train() call -> rank
        self._sent_at: dict[int, float] = {}
        self._lost: dict[int, str] = {}  # rank -> why its actor is gone
        self._stopping = False
        self._server_ms = 0.0

    def restore(self, state: ResumeState) -> None:
        """Continue from a checkpoint: the server starts from its weights and statistics."""
        super().restore(state)
        self._optimizer_state = state.optimizer_state
        self._counts = Counts(applied=state.applied_updates)

    def _start_server(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray, runtime = self._ray, self.cfg.runtime
        weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        # on the run's own node: losing a worker node must not take the global net with it
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), False)
        server = ray.remote(ParameterServer).options(
            num_cpus=runtime.server_cpus, max_restarts=0, scheduling_strategy=here
        )
        self.server = server.remote(
            agent_spec(self.cfg),
            self.cfg.optim,
            self.env_spec.obs_shape,
            self.env_spec.n_actions,
            weights,
            self._optimizer_state,
            self._counts.applied,
        )
        self._counts = ray.get(self.server.counts.remote())[0]

    # ----------------------------------------------------------------------------- workers
    def _start_worker(self, rank: int) -> None:
        options: dict[str, Any] = {
            "num_cpus": self.cfg.runtime.cpus_per_worker,
            "max_restarts": 0,  # the pool replaces lost actors itself, counting max_restarts
        }
        if self.cfg.runtime.spread:
            options["scheduling_strategy"] = "SPREAD"
        # not a child process of the run (parent_pid 0) and never pinned: Ray places it
        spec = replace(
            worker_spec(
                self.cfg,
                self.env_spec,
                self.run_dir,
                rank,
                self._per_rank_restarts.get(rank, 0),
                self.global_step(),
            ),
            cpu=None,
        )
        self._actors[rank] = self._worker_class.options(**options).remote(spec, self.server)
        self._submit(rank)

    def _submit(self, rank: int) -> None:
        ref = self._actors[rank].train.remote(self.cfg.runtime.report_seconds)
        self._calls[ref] = rank
        self._sent_at[rank] = time.monotonic()

    def start(self) -> None:
        """Start the parameter server and the worker actors; say where each one runs."""
        self._start_server()
        for rank in range(self.cfg.workers):
            self._start_worker(rank)
        try:
            places = self._ray.get([self._actors[r].where.remote() for r in sorted(self._actors)])
        except self._ray.exceptions.RayError:
            places = []  # a worker that failed to start is restarted by supervision
        nodes = sorted({node for node, _ in places})
        log.info(
            "started %d Ray worker actors x %d envs on %d node(s)%s",
            len(self._actors),
            self.cfg.envs_per_worker,
            len(nodes),
            "".join(
                f"; worker {r} on node {node[:8]} pid {pid}" for r, (node, pid) in enumerate(places)
            ),
        )

    def poll(self, timeout: float) -> list[Update]:
        """Updates of every train() call that returned; failed calls are noted for supervise."""
        ray = self._ray
        if not self._calls:
            time.sleep(timeout)
            return []
        ready, _ = ray.wait(list(self._calls), num_returns=1, timeout=timeout)
        if ready:
            rest = [ref for ref in self._calls if ref not in ready]
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0) if rest else ([], [])
            ready += more
        updates: list[Update] = []
        for ref in ready:
            rank = self._calls.pop(ref)
            try:
                updates += ray.get(ref)
            except ray.exceptions.RayActorError as err:
                self._lost[rank] = f"was lost ({_first_line(err)})"
                continue
            except ray.exceptions.RayTaskError as err:
                self._lost[rank] = f"raised:\n{err}"
                continue
            if not self._stopping:
                self._submit(rank)
        return updates

    def supervise(self) -> str | None:
        """Replace lost or silent worker actors; past ``max_restarts``, the failure."""
        now = time.monotonic()
        limit = self.cfg.heartbeat_timeout + self.cfg.runtime.report_seconds
        for ref, rank in list(self._calls.items()):
            if now - self._sent_at[rank] > limit:
                self._calls.pop(ref)
                self._kill(rank)
                self._lost[rank] = f"sent nothing for {now - self._sent_at[rank]:.0f} s (heartbeat)"
        if not self._lost:
            return None
        try:
            self._ray.get(self.server.counts.remote(), timeout=30)
        except self._ray.exceptions.RayError as err:
            return f"the parameter server is gone ({_first_line(err)}); the run cannot go on"
        for rank, reason in sorted(self._lost.items()):
            self._kill(rank)
            failure = self._restart_or_fail(rank, reason)
            if failure is not None:
                return failure
            self._start_worker(rank)
        self._lost.clear()
        return None

    def _kill(self, rank: int) -> None:
        actor = self._actors.pop(rank, None)
        if actor is not None:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception as err:  # already gone with its node
                log.debug("worker %d: %s", rank, err)

    # ----------------------------------------------------------------------------- server
    def _server_call(self, name: str) -> Any:
        if self.server is None:
            raise PoolError("the parameter server was never started")
        try:
            return self._ray.get(getattr(self.server, name).remote(), timeout=120)
        except self._ray.exceptions.RayError as err:
            raise PoolError(f"the parameter server is gone ({_first_line(err)})") from None

    def snapshot(self) -> Snapshot:
        """The server's weights, optimizer statistics and count, taken between two steps."""
        return self._server_call("snapshot")

    def counts(self) -> Counts:
        """What the parameter server counted with the updates it applied or skipped."""
        self._counts, self._server_ms = self._server_call("counts")
        return self._counts

    def metrics(self) -> Metrics:
        """The parameter server's mean time per applied update."""
        return {"Perf/Server ms per update": self._server_ms}

    # ----------------------------------------------------------------------------- stopping
    def stop(self, grace: float) -> list[Update]:
        """Let the calls in flight end (up to ``grace`` seconds), close the envs, kill actors."""
        self._stopping = True
        updates: list[Update] = []
        deadline = time.monotonic() + grace
        while self._calls and time.monotonic() < deadline:
            updates += self.poll(timeout=0.1)
        self._calls.clear()
        closing = [actor.close.remote() for actor in self._actors.values()]
        if closing and grace > 0:
            self._ray.wait(closing, num_returns=len(closing), timeout=min(grace, 10.0))
        for rank in list(self._actors):
            self._kill(rank)
        return updates

    def close(self) -> None:
        """Kill the server and leave Ray (a Ray this run started is shut down with it)."""
        if not self._ray.is_initialized():
            return
        for rank in list(self._actors):
            self._kill(rank)
        if self.server is not None:
            try:
                self._ray.kill(self.server, no_restart=True)
            except Exception as err:
                log.debug("parameter server: %s", err)
        self._ray.shutdown()


def user_packages(cfg: TrainConfig) -> list[str]:
    """The top-level packages of the classes a run's workers build that are not this
    project's: a network, env, or loss term of your own, or a gym id's module."""
    from a3c_exp.config import FactoryEnvConfig, TargetConfig
    from a3c_exp.config.targets import PROJECT_PACKAGE, top_package

    names = [term.target for term in (cfg.intrinsic, *cfg.aux.values()) if term is not None]
    if isinstance(cfg.model, TargetConfig):
        names.append(cfg.model.target)
    if isinstance(cfg.env, FactoryEnvConfig):
        names.append(cfg.env.target)
    env_id = getattr(cfg.env, "id", None) or ""
    if ":" in env_id:
        names.append(env_id.partition(":")[0])
    return sorted({top_package(n) for n in names} - {PROJECT_PACKAGE})


def package_dirs(packages: list[str]) -> list[str]:
    """The folder (or module file) of each package, as Ray's ``runtime_env.py_modules`` takes
    it; a package that cannot be found here is left to the nodes' own installs."""
    import importlib.util

    found = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            found.append(str(Path(next(iter(spec.submodule_search_locations)))))
        elif spec.origin:
            found.append(spec.origin)
    return found


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
