"""Training speed of this tree against another commit, side by side in one run.

Checks out ``--ref`` into a temporary git worktree, then runs the same training command with
each code base in turn (A B A B ...), ``--repeats`` times each, and reads each run's own
``steps_per_second`` (env steps over training time, start-up excluded) from its summary line.
Prints every pair, the medians and the ratio this/ref pair by pair, and writes JSON.

Usage: python scripts/bench_ab.py --ref HEAD~1 [--repeats 5] [--out ab.json]
           -- env=doom workers=2 total_steps=30000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"steps_per_second=([0-9.eE+-]+)")


def run_once(code: Path, run_dir: Path, overrides: list[str]) -> float:
    """One training run with the package at ``code``: its steps per second."""
    env = dict(os.environ, PYTHONPATH=str(code), WANDB_MODE="offline", WANDB_SILENT="true")
    command = [
        sys.executable,
        "-m",
        "a3c_exp.train",
        f"hydra.run.dir={run_dir}",
        "logger=none",
        "video_every=0",
        "checkpoint_every=0",
        *overrides,
    ]
    result = subprocess.run(command, cwd=run_dir.parent, env=env, capture_output=True, text=True)
    found = SUMMARY.findall(result.stdout + result.stderr)
    if result.returncode != 0 or not found:
        raise SystemExit(f"{code}: run failed:\n{result.stderr[-2000:]}")
    return float(found[-1])


def main() -> None:
    """Parse arguments, run the pairs, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="the commit to compare with (git rev)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each code base")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    parser.add_argument("overrides", nargs="*", help="training overrides for both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="a3c-ab-") as tmp:
        base = Path(tmp)
        worktree = base / "ref"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), args.ref],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            pairs = []
            for repeat in range(args.repeats):
                ref = run_once(worktree, base / f"ref-{repeat}", args.overrides)
                this = run_once(ROOT, base / f"this-{repeat}", args.overrides)
                pairs.append((this, ref))
                ratio = this / ref
                print(f"pair {repeat}: this {this:,.0f} steps/s, ref {ref:,.0f}, ratio {ratio:.3f}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)
    ratios = [this / ref for this, ref in pairs]
    figures = {
        "ref": args.ref,
        "overrides": args.overrides,
        "this_steps_per_s": [this for this, _ in pairs],
        "ref_steps_per_s": [ref for _, ref in pairs],
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }
    print(
        f"median: this {statistics.median(figures['this_steps_per_s']):,.0f} steps/s, "
        f"ref {statistics.median(figures['ref_steps_per_s']):,.0f}; this/ref "
        f"{figures['ratio_median']:.3f} [{figures['ratio_min']:.3f}-{figures['ratio_max']:.3f}]"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
