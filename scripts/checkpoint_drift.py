"""How a run's policy, value and shared layers change from checkpoint to checkpoint.

A collapse in a training curve (the last-100 mean falling to a fraction of its best and coming
back) can be a slow drift of the policy or a few updates that break the layers both heads
share; the curve alone cannot tell them apart. Given a run's checkpoints (save them densely
around a collapse: ``resume=<a good checkpoint> checkpoint_every=2400``), this script plays a
few episodes once with one checkpoint, then runs every checkpoint's network over those same
observation sequences (each episode from a zero LSTM state) and prints per checkpoint:

* ``kl``: mean KL(previous checkpoint's policy || this one's) over the recorded states, and its
  99th percentile: how far the policy moved since the previous checkpoint;
* ``entropy``, ``mean_v``: the policy's entropy and the value estimate, averaged over the states;
* ``units_alive``: the share of the encoder's output units (the features the LSTM reads) that
  are positive on more than 1 % of the recorded frames, and ``active``: the share of all unit
  activations that are positive. A ReLU unit below zero on every frame passes no gradient: it
  is dead until something else moves its input;
* ``moved``: the parameter whose norm changed most since the previous checkpoint, relative to
  its norm.

Usage: python scripts/checkpoint_drift.py CHECKPOINT_DIR [--episodes 6] [--record CKPT]
           [--first STEP] [--last STEP] [--csv OUT.csv]
(``--record``: the checkpoint that plays the episodes; default the first one in range.)
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from a3c_exp.algo.module import module_from_checkpoint
from a3c_exp.config import parse_env
from a3c_exp.evaluate import play_episodes

ALIVE_SHARE = 0.01
"""A unit is alive when it is positive on more than this share of the recorded frames."""


@dataclass
class Outputs:
    """One checkpoint's network over the recorded episodes."""

    log_probs: torch.Tensor  # (states, actions)
    values: torch.Tensor  # (states,)
    features: torch.Tensor  # (states, encoder outputs)
    weights: dict[str, torch.Tensor]


def checkpoint_step(path: Path) -> int:
    """The step in a ``step-<N>.ckpt`` name."""
    return int(path.stem.split("-", 1)[1])


def record_episodes(path: Path, episodes: int, seed: int, workdir: Path) -> list[torch.Tensor]:
    """Play ``episodes`` episodes with the checkpoint's policy (sampling); their observations."""
    module, _ = module_from_checkpoint(path)
    env_cfg = parse_env(module.hparams.cfg.get("env", {}))
    sequences: list[torch.Tensor] = []
    play_episodes(module, env_cfg, episodes, False, seed, workdir, observations=sequences)
    return sequences


def run_network(path: Path, sequences: list[torch.Tensor]) -> Outputs:
    """The checkpoint's network over each recorded episode, from a zero LSTM state."""
    module, _ = module_from_checkpoint(path)
    net = module.net.eval()
    log_probs, values, features = [], [], []
    with torch.inference_mode():
        for frames in sequences:
            state = net.initial_state(1)
            for obs in frames:
                logits, value, state = net(obs.unsqueeze(0), state)
                log_probs.append(logits.log_softmax(-1)[0])
                values.append(value.reshape(()))
            features.append(net.encoder(frames))
    weights = {name: tensor.detach().clone() for name, tensor in net.state_dict().items()}
    return Outputs(torch.stack(log_probs), torch.stack(values), torch.cat(features), weights)


def drift_row(step: int, outputs: Outputs, previous: Outputs | None) -> dict[str, object]:
    """The printed figures of one checkpoint against the one before it."""
    probs = outputs.log_probs.exp()
    positive = (outputs.features > 0).float()
    row: dict[str, object] = {
        "step": step,
        "kl": 0.0,
        "kl_p99": 0.0,
        "entropy": float(-(probs * outputs.log_probs).sum(-1).mean()),
        "mean_v": float(outputs.values.mean()),
        "units_alive": float((positive.mean(0) > ALIVE_SHARE).float().mean()),
        "active": float(positive.mean()),
        "moved": "",
        "moved_by": 0.0,
    }
    if previous is not None:
        before = previous.log_probs
        kl = (before.exp() * (before - outputs.log_probs)).sum(-1).clamp(min=0.0)
        row["kl"], row["kl_p99"] = float(kl.mean()), float(kl.quantile(0.99))
        changes = {
            name: float((tensor - previous.weights[name]).norm() / previous.weights[name].norm())
            for name, tensor in outputs.weights.items()
            if tensor.is_floating_point() and previous.weights[name].norm() > 0
        }
        row["moved"], row["moved_by"] = max(changes.items(), key=lambda item: item[1])
    return row


def drift(paths: list[Path], sequences: list[torch.Tensor]) -> list[dict[str, object]]:
    """One row per checkpoint, in the order given."""
    rows, previous = [], None
    for path in paths:
        outputs = run_network(path, sequences)
        rows.append(drift_row(checkpoint_step(path), outputs, previous))
        previous = outputs
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint_dir", type=Path, help="a run's checkpoints/ folder")
    parser.add_argument("--episodes", type=int, default=6, help="episodes recorded (default 6)")
    parser.add_argument("--record", type=Path, help="checkpoint that plays them (default first)")
    parser.add_argument("--first", type=int, default=0, help="first step to include")
    parser.add_argument("--last", type=int, default=None, help="last step to include")
    parser.add_argument("--seed", type=int, default=0, help="seed of the recorded episodes")
    parser.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    args = parser.parse_args(argv)
    paths = sorted(
        (
            path
            for path in args.checkpoint_dir.glob("step-*.ckpt")
            if args.first <= checkpoint_step(path) <= (args.last or sys.maxsize)
        ),
        key=checkpoint_step,
    )
    if len(paths) < 2:
        parser.error(f"{args.checkpoint_dir}: needs at least 2 step-*.ckpt files in range")
    torch.set_num_threads(1)
    record = args.record or paths[0]
    with tempfile.TemporaryDirectory(prefix="checkpoint_drift_") as workdir:
        sequences = record_episodes(record, args.episodes, args.seed, Path(workdir))
    print(f"{len(sequences)} episodes ({sum(map(len, sequences))} states) played by {record.name}")
    rows = drift(paths, sequences)
    print(
        f"{'step':>12} {'kl':>7} {'kl_p99':>7} {'entropy':>8} {'mean_v':>8} "
        f"{'alive':>6} {'active':>7}  moved most"
    )
    for row in rows:
        print(
            f"{row['step']:>12,} {row['kl']:7.3f} {row['kl_p99']:7.3f} {row['entropy']:8.3f} "
            f"{row['mean_v']:8.2f} {row['units_alive']:6.0%} {row['active']:7.1%}  "
            f"{row['moved']} {row['moved_by']:.1%}"
        )
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
