"""Fixtures of the merge-gate tests: a real server over SQLite with `db.t` on main."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.server.embedded import start_embedded_server
from tests.gates.helpers import CHECK_MODULE, TEAM_GRANTS, Receiver, TeamLake
from tests.lake import ROWS_SCHEMA, ServerLake
from tests.server.access_helpers import write_auth_config


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[ServerLake]:
    warehouse = tmp_path / "warehouse"
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(warehouse), check_modules=[CHECK_MODULE],
                               webhook_allow=["127.0.0.1"]) as server:
        lake = ServerLake(server, warehouse)
        lake.create("db.t", [1, 2, 3])
        yield lake


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def team_lake(tmp_path: Path) -> Iterator[TeamLake]:
    """A server with principals, no `--webhook-allow`, Python checks from the test
    helpers only (`TeamLake`)."""
    import pyarrow as pa

    tokens = write_auth_config(tmp_path / "auth.toml", TEAM_GRANTS)
    http = Receiver().start()
    try:
        with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                                   warehouse=str(tmp_path / "wh"),
                                   auth=load_auth_config(tmp_path / "auth.toml"),
                                   check_modules=[CHECK_MODULE]) as server:
            site = TeamLake(server, tmp_path, tokens, http)
            main = site.catalog("main")
            main.create_namespace("db")
            main.create_table("db.t", schema=ROWS_SCHEMA).append(
                pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}, schema=ROWS_SCHEMA))
            for branch in ("secret", "team-1", "team-1-dev"):
                server.store.create_ref(branch)
            site.catalog("secret").create_table("db.secret_t", schema=ROWS_SCHEMA).append(
                pa.table({"id": [666], "v": ["s3cr3t-row"]}, schema=ROWS_SCHEMA))
            site.catalog("team-1-dev").load_table("db.t").append(
                pa.table({"id": [4], "v": ["d"]}, schema=ROWS_SCHEMA))
            yield site
    finally:
        http.stop()
