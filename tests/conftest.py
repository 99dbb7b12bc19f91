"""Shared fixtures: store backends (one suite over all of them) and the one SparkSession."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.wiring import open_store
from tests.helpers import BACKENDS, make_store_url
from tests.netguard import STRAY_CALLS, install
from tests.s3.helpers import MotoS3, start_moto

#: examples per fuzz test: bounded for CI; `pytest --long` runs many more before a release
FUZZ_EXAMPLES = 1_500
FUZZ_EXAMPLES_LONG = 20_000


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help=f"run the fuzz suites with {FUZZ_EXAMPLES_LONG} examples each "
                          f"instead of {FUZZ_EXAMPLES} (for releases)")


# ---- no network but loopback: every test fails on a connection elsewhere ------------------
install(STRAY_CALLS.append, lookups=False)


@pytest.fixture(autouse=True)
def no_stray_network_calls() -> Iterator[None]:
    """Fails the test that opened a non-loopback connection (from Python; the examples'
    guard in tests/examples also catches name lookups and cloud-metadata warnings)."""
    del STRAY_CALLS[:]
    yield
    if STRAY_CALLS:
        calls, STRAY_CALLS[:] = list(STRAY_CALLS), []
        pytest.fail(f"non-loopback network calls: {calls}")


@pytest.fixture
def fuzz_examples(request: pytest.FixtureRequest) -> int:
    return FUZZ_EXAMPLES_LONG if request.config.getoption("--long") else FUZZ_EXAMPLES


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


# ---- the one S3 endpoint of the test run -------------------------------------------------
@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server on a free loopback port, shared by every suite (one bucket each:
    `moto_s3.bucket()`)."""
    server = start_moto()
    yield server
    server.stop()


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

    from spark_lakeversion.spark.build import ensure_shim_jar
    from spark_lakeversion.spark.jars import find_aws_sdk_jars, find_iceberg_runtime_jar
    from spark_lakeversion.spark.jvm import install_error_translation

    # the AWS SDK v2 from the start, as `session()` has it: S3 catalogs join at runtime
    jars = [find_iceberg_runtime_jar(), ensure_shim_jar(), *find_aws_sdk_jars()]
    extensions = [ICEBERG_EXTENSION, SHIM_EXTENSION]
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
    install_error_translation()  # shim failures surface as our error types, as in session()
    yield session
    session.stop()
