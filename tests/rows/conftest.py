"""Fixtures of the row-diff tests: a real server over SQLite with a keyed `db.k` (identifier
field `id`) and a keyless `db.t` on main, written through stock pyiceberg REST catalogs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.server.embedded import start_embedded_server
from tests.lake import ServerLake
from tests.rows.helpers import create_keyed


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[ServerLake]:
    warehouse = tmp_path / "warehouse"
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(warehouse)) as server:
        lake = ServerLake(server, warehouse)
        lake.create("db.t", [1, 2, 3])
        create_keyed(lake, "db.k", {i: f"v{i}" for i in range(20)}, files=4)
        yield lake
