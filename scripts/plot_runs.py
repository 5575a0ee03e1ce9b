"""Overlay the learning curves of several runs: reward vs env steps and vs wall time.

Usage: python scripts/plot_runs.py RUN_DIR [RUN_DIR ...] [--out curves.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from a3c_exp.reporting.plots import plot_learning_curves


def main() -> None:
    """Parse arguments and write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories with metrics.csv")
    parser.add_argument("--out", type=Path, default=Path("curves.png"), help="output PNG path")
    args = parser.parse_args()
    missing = [str(d) for d in args.run_dirs if not (d / "metrics.csv").is_file()]
    if missing:
        parser.error(f"no metrics.csv in: {', '.join(missing)}")
    print(plot_learning_curves(args.run_dirs, args.out))


if __name__ == "__main__":
    main()
