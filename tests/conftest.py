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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: xdist's workers then end on short tests, not on one long test
    that started last while the other worker idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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
