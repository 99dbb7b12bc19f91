"""Airflow for the provider's tests: a temporary AIRFLOW_HOME with a SQLite database, a
dags folder holding the test DAGs and `examples/airflow_dag.py`, and a real
`lakeversion serve` the `lakeversion_default` connection points at.

Airflow reads its configuration when first imported, so the environment is set here, at
collection, before any test module imports Airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.server.embedded import serve_in_subprocess
from tests.helpers import IN_CI

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(tempfile.mkdtemp(prefix="lv-airflow-home-"))
DAGS = HOME / "dags"
DAGS.mkdir()
for source in [*sorted((Path(__file__).parent / "dags").glob("*.py")),
               ROOT / "examples" / "airflow_dag.py"]:
    (DAGS / source.name).symlink_to(source)
os.environ.update({
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
})

try:  # after the environment: Airflow reads it on import
    import airflow  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    if IN_CI:  # make setup installs the airflow extra: CI runs these tests
        raise
    # locally without `pip install -e '.[airflow]'`: not collected (said at the end)
    collect_ignore_glob = ["test_*.py"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The temporary Airflow home was made by this process: it goes with it."""
    shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """`airflow db migrate` on the temporary home, once per test run (about 3 s)."""
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                   check=True, capture_output=True, env=os.environ.copy())


@pytest.fixture(scope="session")
def lv_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `lakeversion serve` (its own process), shared by the Airflow tests."""
    root = tmp_path_factory.mktemp("lv-serve")
    with (root / "serve.log").open("ab") as log:
        proc, url = serve_in_subprocess(f"sqlite:///{root / 'store.db'}", root / "warehouse",
                                        output=log)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def connection(lv_server: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The `lakeversion_default` connection, as Airflow reads it from the environment."""
    monkeypatch.setenv("AIRFLOW_CONN_LAKEVERSION_DEFAULT",
                       json.dumps({"conn_type": "lakeversion", "host": lv_server}))
    return lv_server
