"""Exit codes of a training command: 0 finished, 1 failed, 2 bad input, 130 interrupted.

Kept apart from ``run`` (which imports torch) so the entry point can name them without
paying for the imports of a run it may refuse to start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_entry_point(hydra_entry: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` entry point; Hydra's composition errors become one line, exit 2.

    With ``HYDRA_FULL_ERROR`` set, Hydra raises its errors (unknown option, bad override) to
    us instead of printing them over several lines; one line is printed instead, before any
    worker starts. A write the machine refused (no space, read-only, vanished directory) is one
    line too, exit 1. Any other error is raised as it is.
    """
    from a3c_exp.files import fault_line, machine_fault
    from a3c_exp.overrides import composition_error_line

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        hydra_entry()
    except Exception as err:
        if machine_fault(err):  # Hydra could not write the run's own files: a full disk ...
            print(f"error: {fault_line(err)}", file=sys.stderr)
            sys.exit(EXIT_FAILED)
        line = composition_error_line(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
