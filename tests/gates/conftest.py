"""Fixtures of the merge-gate tests: a real server over SQLite with `db.t` on main."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.server.embedded import start_embedded_server
from tests.gates.helpers import CHECK_MODULE, Lake, Receiver


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    warehouse = tmp_path / "warehouse"
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(warehouse), check_modules=[CHECK_MODULE],
                               webhook_allow=["127.0.0.1"]) as server:
        lake = Lake(server, warehouse)
        lake.create("db.t", [1, 2, 3])
        yield lake


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
