"""One A3C worker: its own envs and local network, gradients pushed to the global net.

The learning step (``Learner.update``) is the same for every backend; what differs is how the
global network is reached, behind the three calls of ``GlobalModel``: shared memory and the
step lock in a local worker process (``SharedGlobalModel``, this module), a parameter-server
actor on Ray (``a3c_exp.runtime.ray_pool``).

Loop: copy global weights into the local net (with ``loss.anchor_coef``, move the worker's
moving average of the network toward them, ``a3c_exp.algo.anchor``; with ``optim.kl_target``,
measure how far the policy moved on the previous rollout since the net that collected it); roll out
``rollout_len`` steps of each of its ``envs_per_worker`` envs (acting for all of them in one
batched pass, LSTM state carried across rollouts); compute the loss of the whole rollout in
one batched pass; clip gradients; hand them to the global parameters; step the shared optimizer
and count the applied update (both under the step lock); send an ``Update`` message to the main
process through the worker's own pipe (a worker killed mid-message can only corrupt its own
pipe).

This module imports no Lightning and no W&B: workers only need torch, the env and the maths.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from a3c_exp.algo.agent import Agent, AgentSpec
from a3c_exp.algo.anchor import Anchor
from a3c_exp.algo.learning import rollout_loss, rollout_policy_change
from a3c_exp.algo.rollout import EpisodeRecorder, Rollout, RolloutCollector
from a3c_exp.checkpoint import COUNT_FIELDS
from a3c_exp.envs import make_env
from a3c_exp.messages import Episode, Ready, Update, WorkerError
from a3c_exp.optim.shared import adapt_learning_rate
from a3c_exp.seeding import derive_seed

if TYPE_CHECKING:
    from a3c_exp.config import EnvConfig, LossConfig, TrainConfig
    from a3c_exp.envs import EnvSpec


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs: the typed config sections it uses, as picklable data."""

    rank: int
    seed: int  # the worker's stream of the run's seed (a3c_exp.seeding)
    env: EnvConfig
    agent: AgentSpec  # the network's and the loss terms' sections
    loss: LossConfig
    rollout_len: int
    envs_per_worker: int
    obs_shape: tuple[int, ...]
    n_actions: int
    workdir: str
    parent_pid: int  # the main process (with forkserver, not the direct parent)
    video_every: float = 0.0  # worker 0 records an episode every this many seconds (0 = never)
    video_dir: str = ""
    cpu: int | None = None  # pin the worker (and the engines it starts) to this CPU
    measure_kl: bool = False  # measure each update's policy change (for optim.kl_target)


def worker_spec(
    cfg: TrainConfig,
    env_spec: EnvSpec,
    run_dir: Path,
    rank: int,
    restarts: int,
    global_step: int,
    parent_pid: int = 0,
) -> WorkerSpec:
    """The spec of worker ``rank`` of a run, for either backend.

    Its seed is the run's stream ``(rank, restarts, global_step)``: resumed runs and restarted
    workers get fresh episodes, not a replay, and no other worker or run shares it.
    """
    cpus = getattr(cfg.runtime, "worker_cpus", None)  # pinning: runtime=local only
    return WorkerSpec(
        rank=rank,
        seed=derive_seed(cfg.seed, rank, restarts, global_step),
        env=cfg.env,
        agent=agent_spec(cfg),
        loss=cfg.loss,
        rollout_len=cfg.rollout_len,
        envs_per_worker=cfg.envs_per_worker,
        obs_shape=env_spec.obs_shape,
        n_actions=env_spec.n_actions,
        workdir=str(run_dir / ".vizdoom"),
        parent_pid=parent_pid,
        video_every=cfg.video_every,
        video_dir=str(run_dir / "videos"),
        cpu=cpus[rank % len(cpus)] if cpus else None,
        measure_kl=cfg.optim.kl_target is not None,
    )


def agent_spec(cfg: TrainConfig) -> AgentSpec:
    """The sections a run's agent (network and loss terms) is built from."""
    return AgentSpec(cfg.model, cfg.intrinsic, dict(cfg.aux))


class _Terminated(Exception):
    """Raised in a worker on SIGTERM so ``finally`` blocks close the env (and its engine)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


def _terminate_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (even by SIGKILL).

    Elsewhere the loop's parent-pid check still ends an orphaned worker after its rollout.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (the pid was reused)
        return False
    return True


def hand_over_gradients(local: nn.Module, global_net: nn.Module) -> None:
    """Point every global parameter's gradient at the local one, on every update.

    Assigning each time (rather than "only if the global grad is None") keeps updates flowing even
    when the global params' grads were reset or replaced elsewhere.
    """
    for local_param, global_param in zip(local.parameters(), global_net.parameters(), strict=True):
        global_param.grad = local_param.grad


def parameter_norm(net: nn.Module) -> float:
    """Global L2 norm of the network's weights (the tutorial's 'var norm')."""
    return float(
        torch.linalg.vector_norm(torch.stack([p.detach().norm() for p in net.parameters()]))
    )


class GlobalModel(Protocol):
    """How a worker reaches the global network: pull weights, hand over gradients, step.

    The global side counts each update with its env steps and episodes where it applies it,
    so the run's counters hold even when the worker dies right after.
    """

    def pull(self, local: Agent) -> None:
        """Load the global network's (and loss terms') current weights into ``local``."""

    def hand_over(self, local: Agent) -> None:
        """Give ``local``'s (clipped) gradients to the global side."""

    def step(self, steps: int, episodes: int, kl: float = math.nan) -> float:
        """Apply the handed-over gradients, counted with the rollout's steps and episodes;
        ``kl``, the policy's change since this worker's previous rollout, first adapts the
        learning rate (``optim.kl_target``). Returns the learning rate the step used."""

    def skip(self, steps: int, episodes: int) -> None:
        """Count a rollout whose update was skipped (NaN/inf loss or gradient)."""


class SharedGlobalModel:
    """The global network in shared memory, stepped by this process under the step lock."""

    def __init__(
        self,
        global_net: nn.Module,
        optimizer: torch.optim.Optimizer,
        lock: Any,
        counts: torch.Tensor,
        lock_step: bool = True,
    ):
        self.global_net = global_net
        self.optimizer = optimizer
        self.lock = lock
        self.counts = counts
        self.lock_step = lock_step

    def pull(self, local: Agent) -> None:
        """Copy the shared weights (read without a lock: Hogwild)."""
        local.load_state_dict(self.global_net.state_dict())

    def hand_over(self, local: Agent) -> None:
        """Point the global parameters' gradients at the local ones."""
        hand_over_gradients(local, self.global_net)

    def step(self, steps: int, episodes: int, kl: float = math.nan) -> float:
        """Adapt the rate, step the shared optimizer and count the update, under the lock."""
        return apply_update(
            self.optimizer, self.lock, self.counts, steps, episodes, self.lock_step, kl
        )

    def skip(self, steps: int, episodes: int) -> None:
        """Count the skipped update's rollout, under the lock."""
        apply_update(None, self.lock, self.counts, steps, episodes)


class Learner:
    """A worker's own envs, local network and rollout collector; ``update`` learns once."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.envs: list[Any] = []
        try:
            records = spec.video_every > 0 and spec.rank == 0
            for index in range(spec.envs_per_worker):
                self.envs.append(
                    make_env(
                        spec.env,
                        rank=spec.rank * spec.envs_per_worker + index,
                        workdir=spec.workdir,
                        render_mode="rgb_array" if records and index == 0 else None,
                    )
                )
            self.local = Agent(spec.agent, spec.obs_shape, spec.n_actions)
            self.loss_terms = self.local.loss_terms()
            self._term_parameters = [
                params for _, term, _ in self.loss_terms if (params := list(term.parameters()))
            ]
            recorder = None
            if records and getattr(self.envs[0], "render_mode", None) == "rgb_array":
                fps = self.envs[0].metadata.get("render_fps", 30) / spec.env.frame_skip
                recorder = EpisodeRecorder(
                    self.envs[0], spec.video_every, Path(spec.video_dir), "worker0", fps
                )
            self.collector = RolloutCollector(
                self.envs,
                self.local.net,
                spec.rollout_len,
                seed=spec.seed,
                truncation_discount=spec.loss.gamma if spec.env.bootstrap_truncated else None,
                recorder=recorder,
                keep_next_obs=any(
                    getattr(term, "uses_next_obs", False) for _, term, _ in self.loss_terms
                ),
            )
            # the last rollout learned from and the policy's logits on it then (measure_kl)
            self._previous: tuple[Rollout, torch.Tensor] | None = None
            # the moving average of the network (loss.anchor_coef), from the first pull on
            self.anchor: Anchor | None = None
            self._fault_said = False
        except BaseException:
            self.close()
            raise

    def update(self, model: GlobalModel) -> Update:
        """Pull, roll out, learn, clip, push (skipped on a NaN/inf loss or gradient)."""
        spec, local, collector = self.spec, self.local, self.collector
        net = local.net
        t_sync = time.perf_counter()
        model.pull(local)
        if spec.loss.anchor_coef > 0:
            if self.anchor is None:
                self.anchor = Anchor(net, spec.loss.anchor_decay)
            else:
                self.anchor.follow(net)
        kl = math.nan
        if self._previous is not None:
            kl = rollout_policy_change(net, *self._previous)
        t_rollout = time.perf_counter()
        env_before = collector.env_seconds
        rollout = collector.collect()
        t_learn = time.perf_counter()
        terms, logits = rollout_loss(net, rollout, spec.loss, self.anchor, self.loss_terms)
        local.zero_grad(set_to_none=True)
        terms.total.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(net.parameters(), spec.loss.max_grad_norm))
        # each loss term's gradients are clipped on their own: the network's stay as without it
        term_norms = [
            float(torch.nn.utils.clip_grad_norm_(params, spec.loss.max_grad_norm))
            for params in self._term_parameters
        ]
        skipped = not (
            math.isfinite(grad_norm)
            and all(math.isfinite(n) for n in term_norms)
            and math.isfinite(float(terms.total.detach()))
        )
        t_handoff = time.perf_counter()
        if not skipped:
            model.hand_over(local)
        t_optim = time.perf_counter()
        n = rollout.n_steps
        episodes = tuple(Episode(**e) for e in collector.pop_finished_episodes())
        learning_rate = math.nan
        if skipped:
            model.skip(n, len(episodes))
        else:
            learning_rate = model.step(n, len(episodes), kl)
        self._previous = (rollout, logits) if spec.measure_kl and not skipped else None
        t_end = time.perf_counter()
        env_seconds = collector.env_seconds - env_before
        return Update(
            rank=spec.rank,
            steps=n,
            episodes=episodes,
            videos=tuple(collector.recorder.pop_written() if collector.recorder else ()),
            notes=self._notes(),
            value_loss=float(terms.value_loss.detach()) / n,
            policy_loss=float(terms.policy_loss.detach()) / n,
            entropy=float(terms.entropy.detach()) / n,
            grad_norm=grad_norm,
            var_norm=parameter_norm(net),
            skipped=skipped,
            kl=kl,
            learning_rate=learning_rate,
            anchor_drift=math.nan
            if terms.anchor_drift is None
            else float(terms.anchor_drift.detach()) / n,
            term_metrics=terms.term_metrics if not skipped else {},
            # wall seconds per phase of this update (the worker is single-threaded)
            timing={
                "sync": t_rollout - t_sync,
                "env": env_seconds,
                "act": t_learn - t_rollout - env_seconds,
                "learn": t_handoff - t_learn,
                "handoff": t_optim - t_handoff,
                "optimizer": t_end - t_optim,
            },
        )

    def _notes(self) -> tuple[str, ...]:
        """Said once: that the videos stopped, and why (a GIF the machine refused)."""
        recorder = self.collector.recorder
        if recorder is None or recorder.fault is None or self._fault_said:
            return ()
        self._fault_said = True
        return (f"videos stopped: {recorder.fault}",)

    def close(self) -> None:
        """Stop the envs (and their engine processes)."""
        for env in self.envs:
            env.close()
        self.envs = []


def run_worker(
    spec: WorkerSpec,
    global_net: nn.Module,
    optimizer: torch.optim.Optimizer,
    stats_conn: Any,
    stop_event: Any,
    lock: Any,
    counts: torch.Tensor,
    lock_step: bool = True,
) -> None:
    """Process entry point: train until ``stop_event`` is set or the parent goes away."""
    # Ctrl-C reaches the whole foreground process group; the main process alone decides when to
    # stop, so leave the group (the env engine started below inherits the new group).
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_terminated)
    _terminate_with_parent()
    # The direct parent is the main process (spawn) or the fork server (forkserver), which
    # exits when the main process does. A changed parent means it has gone: stop then.
    parent = os.getppid()
    if not _process_alive(spec.parent_pid):  # the main process died before the request above
        return
    torch.set_num_threads(1)
    torch.manual_seed(spec.seed)
    if spec.cpu is not None:
        # before the envs start: engine processes inherit the affinity and share the core,
        # so a worker and its engines (which take turns) never wait on each other across cores
        os.sched_setaffinity(0, {spec.cpu})
    learner = None
    try:
        learner = Learner(spec)
        model = SharedGlobalModel(global_net, optimizer, lock, counts, lock_step)
        stats_conn.send(Ready(spec.rank, os.getpid()))
        while not (stop_event.is_set() or os.getppid() != parent):
            stats_conn.send(learner.update(model))
    except _Terminated:
        pass
    except Exception:
        if not stop_event.is_set():
            stats_conn.send(WorkerError(spec.rank, traceback.format_exc()))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if learner is not None:
            learner.close()


def apply_update(
    optimizer: torch.optim.Optimizer | None,
    lock: Any,
    counts: torch.Tensor,
    steps: int,
    episodes: int,
    lock_step: bool = True,
    kl: float = math.nan,
) -> float:
    """Step the shared optimizer (``None``: a skipped update) and count the update with its
    env steps and episodes, as one unit under the step lock; the learning rate of the step.

    ``kl`` (the worker's measured policy change) and ``steps`` first set the shared learning
    rate (``optim.shared.adapt_learning_rate``; a no-op without ``optim.kl_target`` and
    ``optim.anneal_steps``; outside the lock, Hogwild, the anneal's count may lose a step).

    SIGTERM is held back meanwhile, so a worker stopped here cannot have stepped without
    counting; ``counts`` (``checkpoint.COUNT_FIELDS``) is what checkpoints record, and its
    applied count equals the optimizer's own step count. With ``lock_step=false`` the step
    runs outside the lock (Hogwild), the counting still inside it.
    """
    blocked = {signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    learning_rate = math.nan
    try:
        if optimizer is not None and not lock_step:
            learning_rate = adapt_learning_rate(optimizer, kl, steps)
            optimizer.step()
        with lock:
            if optimizer is not None and lock_step:
                learning_rate = adapt_learning_rate(optimizer, kl, steps)
                optimizer.step()
            kind = "applied" if optimizer is not None else "skipped"
            counts[COUNT_FIELDS.index(kind)] += 1
            counts[COUNT_FIELDS.index("steps")] += steps
            counts[COUNT_FIELDS.index("episodes")] += episodes
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
    return learning_rate
