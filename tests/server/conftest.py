"""Fixtures of the server tests: a real server on loopback over a real SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.server.files import Site, plant


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "warehouse")) as srv:
        yield srv


@pytest.fixture
def api(server: EmbeddedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=60) as client:
        yield client


def _rest_catalog(server: EmbeddedServer, name: str = "lv", **properties: Any) -> Any:
    """A stock pyiceberg RestCatalog pointed at the server."""
    from pyiceberg.catalog.rest import RestCatalog

    props = {"uri": server.iceberg_uri, **properties}
    if server.token and "token" not in props:
        props["token"] = server.token
    return RestCatalog(name, **props)


@pytest.fixture
def rest_catalog() -> Callable[..., Any]:
    """`rest_catalog(server, name="lv", **props)`: a stock pyiceberg RestCatalog."""
    return _rest_catalog


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A server over warehouse `W` with `extra` allowed too, next to a `victim` directory of
    planted files (see tests/server/files.py)."""
    root = tmp_path / "site"
    warehouse, extra, victim = plant(root)
    with start_embedded_server(f"sqlite:///{root / 'store.db'}", warehouse=str(warehouse),
                               allowed_locations=[str(extra)]) as server:
        yield Site(root, warehouse, extra, victim, server)
