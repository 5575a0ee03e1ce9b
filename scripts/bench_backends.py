"""Throughput of the two worker backends side by side: runtime=local against runtime=ray.

Runs ``a3c_exp.train`` for ``--seconds`` per run with the same env, workers and games per
worker, alternating local and Ray (``--repeats`` times each, so a change of machine load hits
both), and reports agent steps/s after a warm-up, the Ray/local ratio, the parameter server's
mean milliseconds per applied update (push received to weights sent) and the bytes a gradient
push and a weight pull carry for the network. From those it prints the worker count at which
one parameter server saturates.

Usage: python scripts/bench_backends.py [--env doom] [--workers 2] [--seconds 90] [-- key=value ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from a3c_exp.overrides import train_command

STEPS = "global_step"


def one_run(backend: str, args: argparse.Namespace, run_dir: Path) -> dict:
    """One timed run; steps/s over the rows after the warm-up, server ms per update (Ray)."""
    cmd = train_command(
        run_dir,
        f"env={args.env}",
        f"workers={args.workers}",
        f"runtime={backend}",
        "logger=none",
        "video_every=0",
        "log_every=2",
        "checkpoint_every=0",
        "target_reward=null",
        "total_steps=1000000000",
        f"max_time={args.seconds}",
        *args.overrides,
    )
    load_before = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{backend}: train exited {proc.returncode}\n{proc.stderr[-2000:]}")
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["Perf/Time"]) >= args.warmup]
    first, last = rows[0], rows[-1]
    seconds = float(last["Perf/Time"]) - float(first["Perf/Time"])
    server = [float(r["Perf/Server ms per update"]) for r in rows if r["Perf/Server ms per update"]]
    updates = float(last["Perf/Updates"]) - float(first["Perf/Updates"])
    return {
        "backend": backend,
        "steps_per_s": (float(last[STEPS]) - float(first[STEPS])) / seconds,
        "updates_per_s": updates / seconds,
        "server_ms_per_update": server[-1] if server else None,
        "load_average": (load_before + os.getloadavg()[0]) / 2,
    }


def server_costs(env: str, overrides: list[str], pushes: int = 200) -> dict:
    """The parameter server's own cost, in this process: bytes of a push or a pull, ms to apply
    one push (gradients in, optimizer step, weights out) and ms to serialise one push and one
    reply the way Ray's object store does (pickle protocol 5, tensors as out-of-band buffers)."""
    import pickle

    import torch
    from hydra import compose, initialize_config_dir

    from a3c_exp.config import register_configs
    from a3c_exp.envs import probe_env_spec
    from a3c_exp.models import build_model
    from a3c_exp.optim.shared import clone_state_dict
    from a3c_exp.overrides import CONFIG_DIR
    from a3c_exp.runtime.checks import load_validated
    from a3c_exp.runtime.cpus import available_cpus
    from a3c_exp.runtime.ray_pool import ParameterServer

    register_configs(cpu_count=available_cpus)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = load_validated(compose("train", [f"env={env}", *overrides]))
    with tempfile.TemporaryDirectory() as tmp:
        spec = probe_env_spec(cfg.env, workdir=tmp)
    torch.set_num_threads(1)
    net = build_model(cfg.model, spec.obs_shape, spec.n_actions)
    from a3c_exp.optim import build_optimizer

    state = clone_state_dict(build_optimizer(cfg.optim, net.parameters()))
    server = ParameterServer(
        cfg.model, cfg.optim, spec.obs_shape, spec.n_actions, net.state_dict(), state, 0
    )
    grads = (torch.nn.utils.parameters_to_vector(net.parameters()).detach() * 1e-3).numpy()
    start = time.perf_counter()
    for _ in range(pushes):
        reply = server.push(grads)
    apply_ms = 1000 * (time.perf_counter() - start) / pushes
    start = time.perf_counter()
    for _ in range(pushes):
        buffers: list = []
        pickle.loads(
            pickle.dumps(grads, protocol=5, buffer_callback=buffers.append), buffers=buffers
        )
        buffers = []
        pickle.loads(
            pickle.dumps(reply, protocol=5, buffer_callback=buffers.append), buffers=buffers
        )
    serialise_ms = 1000 * (time.perf_counter() - start) / pushes
    size = sum(p.numel() * p.element_size() for p in net.parameters())
    return {"bytes": size, "apply_ms": apply_ms, "serialise_ms": serialise_ms}


def main() -> None:
    """Alternate local and Ray runs; print the table, the ratio and the saturation estimate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="doom")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds ignored at start")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("bench_backends.json"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="a3c-backends-") as tmp:
        for repeat in range(args.repeats):
            for backend in ("local", "ray"):
                start = time.perf_counter()
                run = one_run(backend, args, Path(tmp) / f"{backend}-{repeat}")
                run["wall_s"] = time.perf_counter() - start
                results.append(run)
                print(json.dumps(run), flush=True)

    costs = server_costs(args.env, args.overrides)
    size = costs["bytes"]
    local = statistics.mean(r["steps_per_s"] for r in results if r["backend"] == "local")
    ray = statistics.mean(r["steps_per_s"] for r in results if r["backend"] == "ray")
    ray_updates = statistics.mean(r["updates_per_s"] for r in results if r["backend"] == "ray")
    server_ms = statistics.mean(r["server_ms_per_update"] for r in results if r["backend"] == "ray")
    print(
        f"\n{args.env}, {args.workers} workers, {args.seconds:.0f} s per run, {os.cpu_count()} CPUs"
    )
    print(f"{'backend':>8} {'steps/s':>8} {'updates/s':>9} {'server ms':>9} {'load':>5}")
    for r in results:
        server = f"{r['server_ms_per_update']:.2f}" if r["server_ms_per_update"] else "-"
        print(
            f"{r['backend']:>8} {r['steps_per_s']:>8.0f} {r['updates_per_s']:>9.1f} "
            f"{server:>9} {r['load_average']:>5.1f}"
        )
    print(f"ray / local steps/s: {ray / local:.2f}")
    per_worker = ray_updates / args.workers
    alone = costs["apply_ms"] + costs["serialise_ms"]
    print(
        f"one push = one pull = {size / 1e6:.2f} MB (float32 parameters); in the Ray runs the "
        f"server spent {server_ms:.2f} ms applying each update; alone in this process: "
        f"{costs['apply_ms']:.2f} ms to apply + {costs['serialise_ms']:.2f} ms to serialise a "
        f"push and its reply = {alone:.2f} ms"
    )
    print(
        f"one server saturates near {1000 / alone:.0f} updates/s = "
        f"{1000 / alone / per_worker:.0f} workers at the {per_worker:.1f} updates/s per worker "
        f"measured here, moving {2 * size / alone / 1e6:.2f} GB/s in and out"
    )
    args.json.write_text(
        json.dumps(
            {"args": vars(args) | {"json": str(args.json)}, "runs": results, "network_bytes": size},
            indent=2,
        )
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
