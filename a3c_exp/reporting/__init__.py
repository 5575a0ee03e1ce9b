"""Reporting: the main process's view of a run (statistics, console, CSV curves, W&B).

The main process is the only reader of the workers' statistics queue and the only writer of
console output, metric files and the W&B run.
"""

from a3c_exp.reporting.sinks import CompositeSink, CSVSink, MetricsSink, NullSink, build_sinks
from a3c_exp.reporting.stats import RunStats

__all__ = ["CSVSink", "CompositeSink", "MetricsSink", "NullSink", "RunStats", "build_sinks"]
