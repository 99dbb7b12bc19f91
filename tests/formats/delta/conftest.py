"""Fixtures of the Delta suite: a catalog over a SQLite store (or any backend) whose
warehouse is the test's directory, with one partitioned table on main."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.api import Catalog, connect
from tests.formats.delta.helpers import ID_P_V_ARROW, data


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with connect(f"sqlite:///{tmp_path / 'store.db'}", author="tester",
                 warehouse=str(tmp_path / "warehouse")) as cat:
        yield cat


@pytest.fixture
def events(catalog: Catalog) -> Catalog:
    """`db.events` on main, partitioned by p: two files in partition a, one in b."""
    handle = catalog.branch("main").delta("db.events")
    handle.create(ID_P_V_ARROW, partition_by=["p"])
    handle.append(data((1, "a", 10), (2, "a", 20), (3, "b", 30)))
    handle.append(data((4, "a", 40)))
    return catalog
