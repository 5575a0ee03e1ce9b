"""The Optuna study of a sweep, kept in ``optuna.db`` (SQLite) in the sweep directory.

The sweeper ``hydra/sweeper=a3c_optuna`` keeps its study there so the study outlives the
sweep: ``optuna.load_study(study_name="a3c", storage="sqlite:///<sweep>/optuna.db")`` reopens it
from any process (a later script, optuna-dashboard), the same sweep command resumes it, and the
sweep summary draws Optuna's views of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "optuna.db"


def study_url(sweep_dir: Path) -> str:
    """The storage URL of the study kept in ``sweep_dir``."""
    return f"sqlite:///{Path(sweep_dir) / STUDY_FILE}"


def load_sweep_study(sweep_dir: Path) -> optuna.Study | None:
    """The study kept in ``<sweep_dir>/optuna.db`` (its only one), or None without the file."""
    import optuna

    path = Path(sweep_dir) / STUDY_FILE
    if not path.is_file():
        return None
    storage = study_url(sweep_dir)
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    if len(names) != 1:
        raise ValueError(f"{path}: expected one study, found {len(names)}: {names}")
    return optuna.load_study(study_name=names[0], storage=storage)
