"""Run a DAG file once from a plain script, in a throwaway Airflow home.

``dag.test()`` needs what an Airflow installation has: a migrated metadata database
(else ``no such table: task_instance``) and the DAG in the DAGs folder, whence it is
parsed and serialized (else ``dag is not serialized``). Airflow reads ``AIRFLOW_HOME``
and the DAGs folder when first imported, so `prepare_home` runs before the DAG file
imports Airflow; `migrate` then creates the database. Nothing here imports Airflow at
module level (the provider's `__init__` promise).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["migrate", "prepare_home"]


def prepare_home(dag_file: Path) -> Path:
    """A temporary ``AIRFLOW_HOME`` (removed at exit) whose DAGs folder holds `dag_file`
    alone; the environment points Airflow at it. Call before importing Airflow."""
    if "airflow" in sys.modules:
        raise RuntimeError("prepare_home must run before Airflow is imported")
    home = Path(tempfile.mkdtemp(prefix="lakeversion-airflow-"))
    atexit.register(shutil.rmtree, home, True)
    dags = home / "dags"
    dags.mkdir()
    (dags / dag_file.name).symlink_to(dag_file.resolve())
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    })
    return home


def migrate() -> None:
    """``airflow db migrate`` on the configured home, in-process."""
    from airflow.utils.db import upgradedb

    upgradedb()
