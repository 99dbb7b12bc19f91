"""Over a real server: deleting a branch with unmerged commits needs `force` on `/api/v1`
and the CLI (`--force` needs only `delete`; a protected branch needs `admin` too), and the
audit trail records on a server without authentication, naming the client's author."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.cli.helpers import run, run_json
from tests.server.access_helpers import write_auth_config
from tests.server.helpers import api_error


def _namespace_commit(api: httpx.Client, branch: str, name: str,
                      headers: dict[str, str] | None = None) -> None:
    author = (headers or {}).get("X-Lakeversion-Author")
    body = {"branch": branch, "message": f"add {name}", "author": author, "operations": [
        {"op": "put", "key": [name], "content": {"type": "NAMESPACE", "id": name,
                                                 "properties": {}}}]}
    assert api.post("/commits", json=body, headers=headers or {}).status_code == 201


def _refs(server: EmbeddedServer) -> list[tuple[str, str]]:
    return [(r.name, r.head) for r in server.store.list_refs()]


@pytest.fixture
def authed(tmp_path: Path) -> Iterator[tuple[EmbeddedServer, dict[str, str]]]:
    tokens = write_auth_config(tmp_path / "auth.toml")
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "auth.toml")) as srv:
        yield srv, tokens


def test_unmerged_branch_over_rest_and_cli(server: EmbeddedServer, api: httpx.Client) -> None:
    assert api.post("/refs", json={"name": "dev"}).status_code == 201
    _namespace_commit(api, "dev", "a")
    _namespace_commit(api, "dev", "b")
    before = _refs(server)
    message = api_error(api.post("/refs/delete", json={"name": "dev"}), 409, "UNMERGED_BRANCH")
    assert "has 2 commit(s) that no other branch or tag contains" in message
    refused = run(server.url, "branch", "delete", "dev", code=3)
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert _refs(server) == before
    assert run_json(server.url, "branch", "delete", "dev", "--force")["deleted"] is True
    assert [name for name, _ in _refs(server)] == ["main"]


def test_force_needs_delete_alone_but_admin_on_a_protected_branch(
        authed: tuple[EmbeddedServer, dict[str, str]]) -> None:
    server, tokens = authed
    etl = {"Authorization": f"Bearer {tokens['etl']}"}
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    with httpx.Client(base_url=server.api_url, timeout=60) as api:
        for name in ("etl-1", "etl-2"):
            assert api.post("/refs", json={"name": name}, headers=etl).status_code == 201
            _namespace_commit(api, name, f"ns_{name[-1]}", etl)
        api_error(api.post("/refs/delete", json={"name": "etl-1"}, headers=etl), 409,
                  "UNMERGED_BRANCH")
        deleted = api.post("/refs/delete", json={"name": "etl-1", "force": True}, headers=etl)
        assert deleted.status_code == 200 and deleted.json() == {"deleted": True}
        assert api.post("/branches/protect", json={"name": "etl-2"},
                        headers=admin).status_code == 200
        before = _refs(server)
        denied = api_error(api.post("/refs/delete", json={"name": "etl-2", "force": True},
                                    headers=etl), 403, "FORBIDDEN")
        assert "admin" in denied and "etl-2" in denied
        assert _refs(server) == before
        assert api.post("/refs/delete", json={"name": "etl-2", "force": True},
                        headers=admin).json() == {"deleted": True}


def _audit(server: EmbeddedServer) -> list[dict[str, Any]]:
    return list(run_json(server.url, "audit")["records"])


def test_a_server_without_authentication_keeps_the_audit_trail(
        server: EmbeddedServer, api: httpx.Client) -> None:
    assert api.post("/refs", json={"name": "dev"},
                    headers={"X-Lakeversion-Author": "ada"}).status_code == 201
    assert api.post("/refs", json={"name": "dev"}).status_code == 409  # no author header
    _namespace_commit(api, "dev", "a", {"X-Lakeversion-Author": "bob"})
    records = [(r["principal"], r["operation"], r["ref"], r["outcome"])
               for r in _audit(server)]
    assert records == [("ada", "create_ref", "dev", "done"),
                       ("anonymous", "create_ref", "dev", "failed"),
                       ("bob", "commit", "dev", "done")]
    head = server.store.get_commit(server.store.get_ref("dev").head)
    assert head.author == "bob" and "lakeversion.client-author" not in head.properties
    text = run(server.url, "audit").stdout
    assert "no audit records" not in text and "ada" in text and "bob" in text
