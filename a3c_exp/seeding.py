"""Seeds of a run's random streams, all derived from the run's one ``seed``.

A stream is named by a tuple of small integers (worker rank, restarts, step count, env index,
purpose); ``derive_seed`` hashes the run's seed and that name with ``numpy.random.SeedSequence``
(the name is its spawn key), so no two streams share a seed, in one run or across runs. Adding
offsets instead (worker i seeded ``seed + i``) would make worker 1 of ``seed=0`` replay worker
0 of ``seed=1``: a sweep over seeds would not be independent runs.

This module imports nothing of the package: the config, workers and envs may all use it.
"""

from __future__ import annotations

import numpy as np

ENVS = 0
"""Stream purpose: a worker's environments (one stream per env index under it)."""
SAMPLER = 1
"""Stream purpose: a worker's action sampling and its local network's initialisation."""


def derive_seed(seed: int, *stream: int) -> int:
    """The seed (0 <= s < 2**63) of stream ``stream`` of the run seeded ``seed``.

    Every argument must be an integer >= 0; different ``(seed, *stream)`` give unrelated seeds.
    """
    sequence = np.random.SeedSequence(seed, spawn_key=tuple(int(part) for part in stream))
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
