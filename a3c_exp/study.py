"""The Optuna study of a sweep, kept in ``optuna.db`` (SQLite) in the sweep directory.

The preset ``hydra/sweeper=a3c_optuna`` builds its storage with ``sqlite_storage`` so the study
outlives the sweep: ``optuna.load_study(study_name="a3c", storage="sqlite:///<sweep>/optuna.db")``
reopens it from any process (a later script, optuna-dashboard), and the sweep summary draws
Optuna's views of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "optuna.db"


def sqlite_storage(path: str | Path) -> optuna.storages.RDBStorage:
    """An Optuna storage in the SQLite file ``path`` (its folder made if missing).

    Two things stop a plain ``sqlite:///...`` URL from working here. The sweeper opens the
    storage before Hydra makes the sweep directory, and SQLite does not make folders. And
    optuna 2.10 (hydra-optuna-sweeper 1.3 needs optuna < 3) stamps the schema revision of a new
    file on a connection it never commits: SQLAlchemy 2 rolls the stamp back (the next open
    fails its schema check, ``assert version is not None``) and, until that connection is
    collected, holds the file's write lock. So the tables and the stamp are written here first,
    in one committed transaction; optuna then finds a stamped file, in this process or any other.
    """
    import alembic.migration
    import alembic.script
    import sqlalchemy
    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models  # optuna 2.10's schema and its alembic scripts

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:  # begin(): committed on leaving the block
            models.BaseModel.metadata.create_all(connection)
            context = alembic.migration.MigrationContext.configure(connection)
            if context.get_current_revision() is None:
                scripts = alembic.script.ScriptDirectory(
                    str(Path(models.__file__).parent / "alembic")
                )
                context.stamp(scripts, scripts.get_current_head())
    finally:
        engine.dispose()
    return RDBStorage(url)


def load_sweep_study(sweep_dir: Path) -> optuna.Study | None:
    """The study kept in ``<sweep_dir>/optuna.db`` (its only one), or None without the file."""
    import optuna

    path = Path(sweep_dir) / STUDY_FILE
    if not path.is_file():
        return None
    storage = sqlite_storage(path)
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    if len(names) != 1:
        raise ValueError(f"{path}: expected one study, found {len(names)}: {names}")
    return optuna.load_study(study_name=names[0], storage=storage)
