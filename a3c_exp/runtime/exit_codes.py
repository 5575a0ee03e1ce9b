"""Exit codes of a training command: 0 finished, 1 failed, 2 bad input, 130 interrupted.

Kept apart from ``run`` (which imports torch) so the entry point can name them without
paying for the imports of a run it may refuse to start.
"""

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
