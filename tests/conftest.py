"""Shared fixtures: Hydra compose() with the project's configs, and CLI runs in tmp folders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from a3c_exp.config import register_configs
from a3c_exp.overrides import CONFIG_DIR
from a3c_exp.runtime.cpus import available_cpus


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile the repository's own code once, before the tests start processes.

    Where PYTHONDONTWRITEBYTECODE is set (CI sets it), Python reads ``.pyc`` files but never
    writes them, so every process the tests start would compile the package from source again
    (~0.3 s each, hundreds of processes); pip compiled the installed packages, not this
    editable one. Done by the controller only, not by each xdist worker.
    """
    if hasattr(config, "workerinput"):
        return
    import compileall

    root = Path(__file__).resolve().parent.parent
    for folder in ("a3c_exp", "hydra_plugins", "tests", "examples"):
        compileall.compile_dir(root / folder, quiet=2)


# the files whose tests take longest (Ray clusters, sweeps of several jobs), longest first
LONGEST_FIRST = (
    "test_ray_runs.py",
    "test_pbt.py",
    "test_sweeps.py",
    "test_machine_faults.py",
    "test_pools.py",
    "test_checkpoint.py",
    "test_train_run.py",
)


def _starts_a_ray(item: pytest.Item) -> bool:
    return item.path.name == "test_ray_runs.py" or "[ray]" in item.name


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first, then the other slow ones, then the rest: xdist's workers then
    end on short tests, not on one long test that started last while the others idle. The
    tests that start a Ray of their own run on one worker, one after another: three Rays
    starting at once on 2 cores took each test 2.5x its time alone."""
    for item in items:
        if _starts_a_ray(item):
            item.add_marker(pytest.mark.xdist_group("ray"))

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        if name in LONGEST_FIRST:
            return (0, LONGEST_FIRST.index(name))
        return (1 if item.get_closest_marker("slow") else 2, 0)

    items.sort(key=rank)


@pytest.fixture
def compose_train() -> Iterator:
    """``compose_train(overrides)`` -> the composed training config (schemas registered)."""
    register_configs(cpu_count=available_cpus)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):

        def _compose(overrides: Sequence[str] = ()) -> DictConfig:
            return compose(config_name="train", overrides=list(overrides))

        yield _compose
    GlobalHydra.instance().clear()
