"""Shared fixtures: store backends (one suite over all of them) and the one SparkSession."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.versioning import VersionStore, open_store

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("LAKEVERSION_TEST_POSTGRES",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres",
                             connect_timeout=3):
            return True
    except Exception:
        return False


def require_postgres() -> None:
    """Skip locally when PostgreSQL is down; in CI a missing PostgreSQL is a failure."""
    if postgres_available():
        return
    if IN_CI:
        pytest.fail("PostgreSQL on 127.0.0.1:5432 is required in CI (CI=true)")
    pytest.skip("PostgreSQL on 127.0.0.1:5432 is not running (it must in CI)")


def fresh_postgres_url() -> str:
    """A PostgreSQL store URL in a schema of its own, so tests never see each other."""
    import psycopg

    schema = f"lv_{uuid.uuid4().hex[:12]}"
    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


#: examples per fuzz test: bounded for CI; `pytest --long` runs many more before a release
FUZZ_EXAMPLES = 1_500
FUZZ_EXAMPLES_LONG = 20_000


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help=f"run the fuzz suites with {FUZZ_EXAMPLES_LONG} examples each "
                          f"instead of {FUZZ_EXAMPLES} (for releases)")


@pytest.fixture
def fuzz_examples(request: pytest.FixtureRequest) -> int:
    return FUZZ_EXAMPLES_LONG if request.config.getoption("--long") else FUZZ_EXAMPLES


BACKENDS = ["sqlite-memory", "sqlite-file", "postgres"]


def make_store_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite-memory":
        return "sqlite:///:memory:"
    if backend == "sqlite-file":
        return f"sqlite:///{tmp_path / 'store.db'}"
    require_postgres()
    return fresh_postgres_url()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return make_store_url(request.param, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[VersionStore]:
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[VersionStore]:
    s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


# ---- the one SparkSession of the test run ----------------------------------------------
ICEBERG_EXTENSION = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
SHIM_EXTENSION = "io.lakeversion.spark.LakeVersionSparkSessionExtensions"


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local SparkSession for the whole run, with Iceberg's runtime and our shim.

    Catalogs are registered per test module at runtime (`spark.conf.set(
    "spark.sql.catalog.NAME", ...)`): Spark instantiates catalogs lazily from SQLConf.
    """
    from pyspark.sql import SparkSession

    from spark_lakeversion.spark.jars import find_iceberg_runtime_jar

    jars = [find_iceberg_runtime_jar()]
    extensions = [ICEBERG_EXTENSION]
    try:
        from spark_lakeversion.spark.build import ensure_shim_jar

        jars.append(ensure_shim_jar())
        extensions.append(SHIM_EXTENSION)
    except ImportError:
        pass
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("lakeversion-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.jars", ",".join(str(j) for j in jars if j))
        .config("spark.sql.extensions", ",".join(extensions))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:  # shim failures surface as spark_lakeversion.errors types, as in `session()`
        from spark_lakeversion.spark.jvm import install_error_translation

        install_error_translation()
    except ImportError:
        pass
    yield session
    session.stop()
