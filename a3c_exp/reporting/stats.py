"""Aggregation of worker messages into run counters and per-interval metrics.

Bad numbers never reach a mean: a NaN/inf episode reward is counted (``Faults/Non-finite
rewards``) and left out of the last-100 window, and the losses of skipped updates (or any
non-finite loss) stay out of the interval means.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np

from a3c_exp.checkpoint import Counts
from a3c_exp.messages import Update
from a3c_exp.typing import Metrics

LOSS_KEYS = {
    "value_loss": "Losses/Value Loss",
    "policy_loss": "Losses/Policy Loss",
    "entropy": "Losses/Entropy",
    "grad_norm": "Losses/Grad Norm",
    "var_norm": "Losses/Var Norm",
    "kl": "Losses/KL",
    "learning_rate": "Losses/Learning Rate",
    "anchor_drift": "Losses/Anchor Drift",
}
EPISODE_KEYS = {"reward": "Perf/Reward", "length": "Perf/Length", "value": "Perf/Value"}
CURVE_POINTS = 1024
"""The most stretches the floor's curve keeps; past it, neighbours merge into their minimum."""
TIMING_PHASES = ("sync", "env", "act", "learn", "handoff", "optimizer")
"""The phases of a worker update, as the workers name them in their ``timing`` dicts."""


def timing_key(phase: str) -> str:
    """The metric name of a phase's mean wall time per env step."""
    return f"Timing/{phase} ms per step"


class RunStats:
    """Counters of a run (continued across resumes) and the metrics of the current interval."""

    def __init__(self, frame_skip: int, counters: dict[str, Any] | None = None, window: int = 100):
        counters = counters or {}
        self.frame_skip = frame_skip
        self.global_step = int(counters.get("global_step", 0))
        self.episodes = int(counters.get("episodes", 0))
        self.updates = int(counters.get("updates", 0))
        self.skipped_updates = int(counters.get("skipped_updates", 0))
        self.nonfinite_rewards = int(counters.get("nonfinite_rewards", 0))
        self.worker_restarts = int(counters.get("worker_restarts", 0))
        self.elapsed_before = float(counters.get("elapsed", 0.0))
        self.best_mean_reward = counters.get("best_mean_reward")
        # the last-100 mean summed over env steps (each update's steps at the mean after it),
        # and those steps: their ratio is the area under the learning curve per env step
        self.reward_area = float(counters.get("reward_area", 0.0))
        self.reward_area_steps = int(counters.get("reward_area_steps", 0))
        # the full-window last-100 mean's lowest value per stretch of updates, as [first env
        # step, lowest mean, updates] in step order, each stretch at most `curve_stride` updates:
        # the floor objective reads its second half
        self.reward_curve: list[list[float]] = [
            [int(step), float(low), int(count)]
            for step, low, count in counters.get("reward_curve", [])
        ]
        self.curve_stride = int(counters.get("curve_stride", 1))
        # the totals before this run's pool started (a resume continues them)
        self._before = Counts(0, self.skipped_updates, self.global_step, self.episodes)
        self.recent_rewards: deque[float] = deque(
            (r for r in counters.get("recent_rewards", []) if math.isfinite(r)), maxlen=window
        )
        # lengths (agent steps) of the same episodes: tics survived = length x frame skip
        self.recent_lengths: deque[float] = deque(counters.get("recent_lengths", []), maxlen=window)
        self._start = time.monotonic()
        self._interval_start = self._start
        self._interval_steps = 0
        self._interval_updates = 0
        self._timing: dict[str, float] = {}
        self.worker_episodes: dict[int, int] = {}
        self.learning_rate: float | None = None
        self._losses: dict[str, list[float]] = {k: [] for k in LOSS_KEYS}
        self._episodes: dict[str, list[float]] = {k: [] for k in EPISODE_KEYS}
        self._term_metrics: dict[str, list[float]] = {}  # the loss terms' figures, by key
        self.recent_speed = 0.0

    @property
    def elapsed(self) -> float:
        """Seconds of training, including those before a resume."""
        return self.elapsed_before + time.monotonic() - self._start

    @property
    def auc_mean_reward(self) -> float | None:
        """The last-100 mean reward averaged over the env steps since the first episode.

        The area under the learning curve per env step: it rises with how soon a run learns
        and how steadily it keeps what it learned, and no single moment (a collapse at the end,
        a lucky peak) moves it by more than that moment's share of the run.
        """
        return self.reward_area / self.reward_area_steps if self.reward_area_steps else None

    @property
    def floor_mean_reward(self) -> float | None:
        """The lowest full-window last-100 mean over the second half of the run's env steps.

        How low a run fell after it had half its budget to learn: high only for a run that
        learned early and kept it, so a sweep ranked by it favours settings whose learned
        policies do not collapse (a final value misses a collapse that recovered, an area
        averages it away). The half is taken to within one merged stretch of the curve (at most
        ``2 / CURVE_POINTS`` of the run); None before the window first fills.
        """
        half = self.global_step / 2
        late = [low for step, low, _ in self.reward_curve if step >= half]
        if not late and self.reward_curve:
            late = [self.reward_curve[-1][1]]
        return min(late) if late else None

    def _extend_curve(self, step: int, mean: float) -> None:
        """Add one update's last-100 mean; past CURVE_POINTS stretches, pairs merge into one."""
        last = self.reward_curve[-1] if self.reward_curve else None
        if last is not None and last[2] < self.curve_stride:
            last[1] = min(last[1], mean)
            last[2] += 1
            return
        self.reward_curve.append([step, mean, 1])
        if len(self.reward_curve) > CURVE_POINTS:
            pairs = zip(self.reward_curve[::2], self.reward_curve[1::2], strict=False)
            merged = [
                [first[0], min(first[1], second[1]), first[2] + second[2]]
                for first, second in pairs
            ]
            if len(self.reward_curve) % 2:
                merged.append(self.reward_curve[-1])
            self.reward_curve = merged
            self.curve_stride *= 2

    @property
    def mean_reward(self) -> float | None:
        """Mean reward of the last (up to) 100 episodes, or None before the first one."""
        return float(np.mean(self.recent_rewards)) if self.recent_rewards else None

    def set_counts(self, counts: Counts) -> None:
        """Take the run's totals from what the pool counted where updates were applied.

        Between two calls, ``add`` keeps ``global_step`` and ``episodes`` moving with the
        messages; each call replaces them with the pool's counts, which a worker dying after
        its update cannot lose.
        """
        self.global_step = self._before.steps + counts.steps
        self.episodes = self._before.episodes + counts.episodes
        self.skipped_updates = self._before.skipped + counts.skipped
        self.updates = counts.applied

    def add(self, update: Update) -> None:
        """Fold one worker update into the interval's metrics and the running totals."""
        self.global_step += update.steps
        self._interval_steps += update.steps
        self.updates += int(not update.skipped)
        self._interval_updates += 1
        for phase, seconds in update.timing.items():
            self._timing[phase] = self._timing.get(phase, 0.0) + seconds
        self.worker_episodes[update.rank] = self.worker_episodes.get(update.rank, 0) + len(
            update.episodes
        )
        self.skipped_updates += int(update.skipped)
        if not update.skipped:
            for key in LOSS_KEYS:
                value = getattr(update, key)
                if math.isfinite(value):
                    self._losses[key].append(value)
            for key, value in update.term_metrics.items():
                if math.isfinite(value):
                    self._term_metrics.setdefault(key, []).append(value)
        for episode in update.episodes:
            self.episodes += 1
            if not math.isfinite(episode.reward):
                self.nonfinite_rewards += 1
                continue
            self.recent_rewards.append(episode.reward)
            self.recent_lengths.append(episode.length)
            for key in EPISODE_KEYS:
                value = getattr(episode, key)
                if math.isfinite(value):
                    self._episodes[key].append(value)
        mean = self.mean_reward
        if mean is not None:
            self.reward_area += mean * update.steps
            self.reward_area_steps += update.steps
        if mean is not None and len(self.recent_rewards) == self.recent_rewards.maxlen:
            self._extend_curve(self.global_step, mean)
            if self.best_mean_reward is None or mean > self.best_mean_reward:
                self.best_mean_reward = mean

    def flush(self) -> Metrics:
        """Metrics of the interval since the last flush (means), plus the run counters."""
        now = time.monotonic()
        seconds = max(now - self._interval_start, 1e-9)
        self.recent_speed = self._interval_steps / seconds
        metrics: Metrics = {
            "global_step": self.global_step,
            "Perf/Time": self.elapsed,
            "Perf/Steps per second": self.recent_speed,
            "Perf/FPS": self.recent_speed * self.frame_skip,
            "Perf/Episodes": self.episodes,
            "Perf/Updates": self.updates,
            "Perf/Updates per second": self._interval_updates / seconds,
            "Faults/Skipped updates": self.skipped_updates,
            "Faults/Non-finite rewards": self.nonfinite_rewards,
            "Faults/Worker restarts": self.worker_restarts,
        }
        if self.mean_reward is not None:
            metrics["Perf/Mean Reward (last 100)"] = self.mean_reward
        if self.recent_lengths:
            metrics["Perf/Mean Length (last 100)"] = float(np.mean(self.recent_lengths))
        if self.learning_rate is not None:
            metrics["Losses/Learning Rate"] = self.learning_rate
        for phase, seconds in self._timing.items():
            if self._interval_steps:
                metrics[timing_key(phase)] = 1000 * seconds / self._interval_steps
        for rank, count in sorted(self.worker_episodes.items()):
            metrics[f"Workers/Episodes worker {rank}"] = count
        for key, name in {**LOSS_KEYS, **EPISODE_KEYS}.items():
            values = self._losses.get(key) or self._episodes.get(key)
            if values:
                metrics[name] = float(np.mean(values))
        for key, values in self._term_metrics.items():
            metrics[key] = float(np.mean(values))
        self._term_metrics = {}
        self._interval_start = now
        self._interval_steps = 0
        self._interval_updates = 0
        self._timing = {}
        self._losses = {k: [] for k in LOSS_KEYS}
        self._episodes = {k: [] for k in EPISODE_KEYS}
        return metrics

    def counters(self) -> dict[str, Any]:
        """The run's counters as plain data, for checkpoints (so resume continues them)."""
        return {
            "global_step": self.global_step,
            "episodes": self.episodes,
            "updates": self.updates,
            "skipped_updates": self.skipped_updates,
            "nonfinite_rewards": self.nonfinite_rewards,
            "worker_restarts": self.worker_restarts,
            "elapsed": self.elapsed,
            "best_mean_reward": self.best_mean_reward,
            "reward_area": self.reward_area,
            "reward_area_steps": self.reward_area_steps,
            "reward_curve": [list(point) for point in self.reward_curve],
            "curve_stride": self.curve_stride,
            "recent_rewards": list(self.recent_rewards),
            "recent_lengths": list(self.recent_lengths),
        }

    def summary(self) -> Metrics:
        """End-of-run values: final, best, step-averaged and late-floor last-100 means, totals."""
        summary: Metrics = {
            "total_steps": self.global_step,
            "episodes": self.episodes,
            "wall_time": self.elapsed,
            "steps_per_second": self.global_step / max(self.elapsed, 1e-9),
        }
        if self.mean_reward is not None:
            summary["final_mean_reward"] = self.mean_reward
        if self.best_mean_reward is not None:
            summary["best_mean_reward"] = self.best_mean_reward
        if self.auc_mean_reward is not None:
            summary["auc_mean_reward"] = self.auc_mean_reward
        if self.floor_mean_reward is not None:
            summary["floor_mean_reward"] = self.floor_mean_reward
        return summary
