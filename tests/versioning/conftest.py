"""The store behaviour suite also runs through the REST client against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.formats.delta.format import DeltaFormat
from spark_lakeversion.tableformat.base import FORMATS
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning.gates.policy import CheckPolicy
from spark_lakeversion.wiring import open_store
from tests.helpers import BACKENDS, make_store_url
from tests.versioning.helpers import PlainTables

#: this suite's Python checks live in its own modules (`--check-module tests.versioning`)
CHECKS = CheckPolicy.of(["tests.versioning"])


@pytest.fixture(autouse=True)
def plain_tables() -> Iterator[None]:
    """This suite's table states are `PlainTables`, not Delta tables with logs."""
    FORMATS.register(PlainTables())
    try:
        yield
    finally:
        FORMATS.register(DeltaFormat())


@pytest.fixture(params=[*BACKENDS, "rest"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VersionStore]:
    if request.param != "rest":
        s = open_store(make_store_url(request.param, tmp_path), check_policy=CHECKS)
        yield s
        s.close()
        return
    from spark_lakeversion.server.embedded import start_embedded_server
    from spark_lakeversion.versioning.http import RestVersionStore

    backing = open_store(f"sqlite:///{tmp_path / 'store.db'}", check_policy=CHECKS)
    with start_embedded_server(backing, warehouse=str(tmp_path / "wh")) as server:
        client = RestVersionStore(server.url)
        client._backing = backing  # type: ignore[attr-defined]  # for "wrote nothing" checks
        yield client
        client.close()
    backing.close()
