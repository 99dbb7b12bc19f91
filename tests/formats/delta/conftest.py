"""Fixtures of the Delta suite: a catalog over a SQLite store whose warehouse is the test's
directory, or a fresh bucket on the run's moto S3 server (`lake`, parametrised: the same
tests on both, the store opened with the FileIO properties a server would have), with one
partitioned table on main."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.wiring import open_store
from tests.formats.delta.helpers import ID_P_V_ARROW, DeltaLake, data
from tests.s3.helpers import MotoS3


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeltaLake]:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "local":
        with connect(store_url, author="tester",
                     warehouse=str(tmp_path / "warehouse")) as cat:
            yield DeltaLake(cat, FileIOConfig(), store_url)
        return
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    bucket = moto.bucket()
    io = FileIOConfig(moto.io())
    with Catalog(open_store(store_url, io=io), author="tester",
                 warehouse=f"s3://{bucket}/wh") as cat:
        yield DeltaLake(cat, io, store_url)


@pytest.fixture
def catalog(lake: DeltaLake) -> Catalog:
    """The lake's catalog: every test of the suite runs on local files and on S3."""
    return lake.catalog


@pytest.fixture
def events(catalog: Catalog) -> Catalog:
    """`db.events` on main, partitioned by p: two files in partition a, one in b."""
    handle = catalog.branch("main").delta("db.events")
    handle.create(ID_P_V_ARROW, partition_by=["p"])
    handle.append(data((1, "a", 10), (2, "a", 20), (3, "b", 30)))
    handle.append(data((4, "a", 40)))
    return catalog
