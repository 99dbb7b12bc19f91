"""What "nothing written" means for a server test: every store row and every file the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spark_lakeversion.server.embedded import EmbeddedServer
from tests.store.helpers import snapshot_of_store


def written(server: EmbeddedServer, *dirs: Path) -> tuple[dict[str, Any], set[Path]]:
    """Every row of the server's store and every file under its warehouse (and `dirs`)."""
    warehouse = Path(server.warehouse.removeprefix("file://"))
    files = {p for d in (warehouse, *dirs) if d.exists() for p in d.rglob("*") if p.is_file()}
    return snapshot_of_store(server.store), files


def api_error(response: Any, status: int, code: str) -> str:
    """The `/api/v1` error body's message, after checking its status and code."""
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def iceberg_error(response: Any, status: int, type_: str) -> str:
    """The Iceberg error body's message, after checking its status, type and code."""
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["type"] == type_ and body["code"] == status, body
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def create_table_updates(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The updates a create-table commit carries (as Iceberg's Java client sends them);
    callers append `set-location` when they name one."""
    return [{"action": "upgrade-format-version", "format-version": 2},
            {"action": "add-schema", "schema": schema},
            {"action": "set-current-schema", "schema-id": -1},
            {"action": "add-spec", "spec": {"spec-id": 0, "fields": []}},
            {"action": "set-default-spec", "spec-id": -1},
            {"action": "add-sort-order", "sort-order": {"order-id": 0, "fields": []}},
            {"action": "set-default-sort-order", "sort-order-id": -1}]
