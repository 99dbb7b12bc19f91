"""`/api/v1` against DEVELOPERS.md: shapes, status codes and error bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pyarrow as pa

from spark_lakeversion.server.embedded import EmbeddedServer

ROWS = pa.table({"id": pa.array([1, 2], pa.int64())})


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    assert body["code"] == code and body["type"] and body["message"]
    assert isinstance(body["conflicts"], list)
    return body


def test_refs_resolve_log_contents_diff(server: EmbeddedServer, api: httpx.Client,
                                        rest_catalog: Callable[..., Any]) -> None:
    r = api.post("/refs", json={"name": "dev"})
    assert r.status_code == 201 and r.json()["name"] == "dev" and r.json()["type"] == "BRANCH"
    error(api.post("/refs", json={"name": "dev"}), 409, "ALREADY_EXISTS")
    assert api.post("/refs", json={"name": "dev", "if_not_exists": True}).status_code == 200
    error(api.post("/refs", json={"name": "bad..name"}), 400, "INVALID_NAME")
    error(api.post("/refs", json={"name": "x", "from": "nope"}), 404, "REF_NOT_FOUND")
    error(api.post("/refs", json={"nome": "x"}), 400, "INVALID_INPUT")
    assert api.post("/refs", json={"name": "v1", "type": "TAG"}).status_code == 201
    assert [r["name"] for r in api.get("/refs", params={"type": "TAG"}).json()["refs"]] == ["v1"]
    assert api.get("/refs/get", params={"name": "v1"}).json()["type"] == "TAG"
    error(api.get("/refs/get", params={"name": "zzz"}), 404, "REF_NOT_FOUND")

    cat = rest_catalog(server, warehouse="dev")
    cat.create_namespace("db")
    cat.create_table("db.t", schema=ROWS.schema).append(ROWS)
    resolved = api.get("/resolve", params={"ref": "dev"}).json()
    assert resolved["branch"] == "dev" and resolved["writable"] is True
    tag = api.get("/resolve", params={"ref": "v1"}).json()
    assert tag["writable"] is False and tag["branch"] is None
    error(api.get("/resolve", params={"ref": "dev~x"}), 400, "INVALID_REF_EXPRESSION")
    assert api.get("/resolve", params={"ref": "dev~1"}).json()["writable"] is False

    page = api.get("/log", params={"ref": "dev", "limit": 1}).json()
    assert len(page["commits"]) == 1 and page["next_page_token"]
    rest = api.get("/log", params={"ref": "dev", "page_token": page["next_page_token"]}).json()
    assert page["commits"][0]["id"] not in [c["id"] for c in rest["commits"]]
    commit = api.get(f"/commits/{page['commits'][0]['id']}").json()
    assert commit == page["commits"][0]
    error(api.get("/commits/0123456789abcdef"), 404, "COMMIT_NOT_FOUND")
    error(api.get("/log", params={"limit": 0}), 400, "INVALID_INPUT")

    entries = api.get("/contents", params={"ref": "dev", "prefix": "db"}).json()["entries"]
    assert [(e["key"], e["elements"], e["content"]["type"]) for e in entries] == [
        ("db.t", ["db", "t"], "ICEBERG_TABLE")]
    assert entries[0]["content"]["metadata_location"].endswith(".metadata.json")
    diffs = api.get("/diff", params={"from": "main", "to": "dev"}).json()["diffs"]
    assert {(d["key"], d["kind"]) for d in diffs} == {("db", "ADDED"), ("db.t", "ADDED")}

    assign = api.post("/refs/assign", json={"name": "dev", "to": "main"})
    assert assign.status_code == 200 and assign.json()["head"] == api.get(
        "/resolve", params={"ref": "main"}).json()["commit_id"]
    error(api.post("/refs/assign", json={"name": "dev", "to": "main",
                                         "expected_head": resolved["commit_id"]}), 409,
          "REFERENCE_CONFLICT")
    assert api.post("/refs/delete", json={"name": "dev"}).json() == {"deleted": True}
    assert api.post("/refs/delete", json={"name": "dev", "if_exists": True}).json() == {
        "deleted": False}
    error(api.post("/refs/delete", json={"name": "dev"}), 404, "REF_NOT_FOUND")


def test_merge_conflict_revert_cherry_pick_rollback(server: EmbeddedServer, api: httpx.Client,
                                                    rest_catalog: Callable[..., Any]) -> None:
    main = rest_catalog(server)
    main.create_namespace("db")
    main.create_table("db.t", schema=ROWS.schema)
    api.post("/refs", json={"name": "dev"}).raise_for_status()
    dev = rest_catalog(server, "dev", warehouse="dev")
    # both sides change the same table property differently: a conflict
    with main.load_table("db.t").transaction() as txn:
        txn.set_properties(owner="main")
    with dev.load_table("db.t").transaction() as txn:
        txn.set_properties(owner="dev")
    head = api.get("/resolve", params={"ref": "main"}).json()["commit_id"]
    dry = api.post("/merge", json={"source": "dev", "dry_run": True})
    assert dry.status_code == 200  # a dry run reports the conflict instead of refusing
    assert dry.json()["successful"] is False and dry.json()["dry_run"] is True
    r = api.post("/merge", json={"source": "dev", "target": "main", "message": "m"})
    body = error(r, 409, "CONFLICT")
    assert body["conflicts"] and body["conflicts"][0]["key"] == "db.t"
    assert body["result"]["successful"] is False and body["result"]["new_head"] is None
    assert api.get("/resolve", params={"ref": "main"}).json()["commit_id"] == head
    error(api.post("/merge", json={"source": "dev", "target": "v9"}), 404, "REF_NOT_FOUND")
    error(api.post("/merge", json={"source": "dev", "strategy": "sideways"}), 400,
          "INVALID_INPUT")
    forced = api.post("/merge", json={"source": "dev", "behaviors": {"db.t": "FORCE"}},
                      headers={"X-Lakeversion-Author": "ann"})
    assert forced.status_code == 200, forced.text
    assert main.load_table("db.t").properties["owner"] == "dev"
    merge_commit = api.get("/log", params={"limit": 1}).json()["commits"][0]
    assert merge_commit["author"] == "ann"

    # rollback the table to before the merge, then revert that rollback
    rolled = api.post("/rollback", json={"branch": "main", "table": "db.t", "to": head,
                                         "message": "undo"})
    assert rolled.status_code == 200 and rolled.json()["message"] == "undo"
    assert main.load_table("db.t").properties["owner"] == "main"
    reverted = api.post("/revert", json={"commit": rolled.json()["id"], "branch": "main"})
    assert reverted.status_code == 200 and reverted.json()["successful"]
    assert main.load_table("db.t").properties["owner"] == "dev"

    # cherry-pick a dev-only change onto main; a tag cannot be written (403)
    with dev.load_table("db.t").transaction() as txn:
        txn.set_properties(extra="1")
    pick = api.get("/log", params={"ref": "dev", "limit": 1}).json()["commits"][0]["id"]
    picked = api.post("/cherry-pick", json={"commits": [pick], "branch": "main"})
    assert picked.status_code == 200, picked.text
    assert main.load_table("db.t").properties["extra"] == "1"
    api.post("/refs", json={"name": "v1", "type": "TAG"}).raise_for_status()
    error(api.post("/rollback", json={"branch": "v1", "table": "db.t", "to": head}), 403,
          "READ_ONLY_REF")
