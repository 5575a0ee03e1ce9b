"""Summarise a sweep: a table of every job (overrides, objective, wall time, steps/s, status).

Writes summary.md, summary.csv and summary_curves.png into the sweep directory (the training
jobs also rewrite them after each job), and Optuna's views (optuna_*.png) when the sweep kept
its study in optuna.db; ``--wandb`` logs the table and plots as a summary run of the sweep's
W&B group.

Usage: python scripts/sweep_summary.py multirun/<date>/<time> [--wandb]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from a3c_exp.sweep import (
    log_summary_to_wandb,
    summarise_sweep,
    sweep_group,
    sweep_images,
    write_study_plots,
)


def main() -> None:
    """Parse arguments, write the summary files, print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the sweep directory (multirun/<date>/<time>)")
    parser.add_argument("--wandb", action="store_true", help="also log the table to W&B")
    parser.add_argument("--project", default="a3c-exp", help="W&B project (with --wandb)")
    parser.add_argument("--mode", default="offline", choices=["offline", "online"])
    args = parser.parse_args()
    if not any(args.sweep_dir.glob("*/job.json")):
        parser.error(f"{args.sweep_dir}: no job.json in any job directory")
    rows = summarise_sweep(args.sweep_dir)
    write_study_plots(args.sweep_dir)
    print((args.sweep_dir / "summary.md").read_text())
    if args.wandb:
        logger = {
            "project": args.project,
            "entity": None,
            "mode": args.mode,
            "group": sweep_group(args.sweep_dir),
        }
        log_summary_to_wandb(args.sweep_dir, rows, logger, sweep_images(args.sweep_dir))


if __name__ == "__main__":
    main()
