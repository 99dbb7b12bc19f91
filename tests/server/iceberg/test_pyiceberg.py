"""The Iceberg REST catalog through pyiceberg's stock RestCatalog, on a real server."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.exceptions import (
    BadRequestError,
    ForbiddenError,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import EqualTo
from pyiceberg.types import StringType

from spark_lakeversion.formats.iceberg.catalog.addressing import decode_prefix, encode_prefix
from spark_lakeversion.server.embedded import EmbeddedServer

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": pa.array(["a", "b", "c"])})


def ids(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist())


def test_prefix_encoding_round_trips() -> None:
    for expr in ["main", "dev", "feature/x", "main~2", "main#2026-01-01T00:00:00Z", "abcdef12"]:
        encoded = encode_prefix(expr)
        assert "/" not in encoded and "#" not in encoded
        assert decode_prefix(encoded) == expr


def test_namespaces(server: EmbeddedServer,
        rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace("db", {"owner": "ann"})
    cat.create_namespace(("db", "sub"))
    with pytest.raises(NamespaceAlreadyExistsError):
        cat.create_namespace("db")
    assert cat.list_namespaces() == [("db",)]
    assert cat.list_namespaces("db") == [("db", "sub")]
    assert cat.load_namespace_properties("db") == {"owner": "ann"}
    assert cat.namespace_exists(("db", "sub")) and not cat.namespace_exists("nope")
    summary = cat.update_namespace_properties("db", removals={"owner", "gone"},
                                              updates={"team": "x"})
    assert summary.removed == ["owner"] and summary.missing == ["gone"]
    assert cat.load_namespace_properties("db") == {"team": "x"}
    with pytest.raises(NamespaceNotEmptyError):
        cat.drop_namespace("db")
    cat.drop_namespace(("db", "sub"))
    with pytest.raises(NoSuchNamespaceError):
        cat.load_namespace_properties(("db", "sub"))
    # namespaces are versioned: one created on dev is not on main
    httpx.post(server.api_url + "/refs", json={"name": "dev"}).raise_for_status()
    cat.create_namespace("devonly@dev")
    assert not cat.namespace_exists("devonly")
    assert rest_catalog(server, warehouse="dev").namespace_exists("devonly")


def test_table_lifecycle_append_overwrite_delete_evolve(server: EmbeddedServer,
        rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace("db")
    with pytest.raises(NoSuchNamespaceError):
        cat.create_table("missing.t", schema=ROWS.schema)
    table = cat.create_table("db.t", schema=ROWS.schema)
    with pytest.raises(TableAlreadyExistsError):
        cat.create_table("db.t", schema=ROWS.schema)
    table.append(ROWS)
    table.append(ROWS)
    assert cat.load_table("db.t").scan().to_arrow().num_rows == 6
    table.overwrite(pa.table({"id": pa.array([10], pa.int64()), "name": pa.array(["z"])}))
    assert ids(cat.load_table("db.t").scan().to_arrow()) == [10]
    table.append(ROWS)
    table.delete(EqualTo("id", 2))
    assert ids(cat.load_table("db.t").scan().to_arrow()) == [1, 3, 10]
    with table.update_schema() as update:
        update.add_column("note", StringType())
    table.append(pa.table({"id": pa.array([7], pa.int64()), "name": pa.array(["n"]),
                           "note": pa.array(["hi"])}))
    loaded = cat.load_table("db.t")
    assert "note" in loaded.schema().column_names
    data = loaded.scan().to_arrow()
    assert ids(data) == [1, 3, 7, 10]
    assert data.filter(pc.equal(data["id"], 7))["note"].to_pylist() == ["hi"]
    # metadata lives under the table location, inside the warehouse
    location = urlparse(loaded.metadata_location).path
    assert Path(location).is_file() and "/warehouse/db/t_" in location
    assert cat.list_tables("db") == [("db", "t")]
    # every REST commit is a store commit with a descriptive message
    log = httpx.get(server.api_url + "/log", params={"ref": "main", "key": "db.t"}).json()
    messages = [c["message"] for c in log["commits"]]
    assert messages[-1] == "create table db.t"
    # what happened, from the snapshot summaries (issue 25), not a snapshot id
    assert messages[:-1] == [
        "append 1 row (1 file) to db.t",
        "add-schema, set-current-schema db.t",  # no snapshot: the metadata updates
        "overwrite db.t: 2 rows (1 file) added, 3 rows (1 file) removed",  # delete id 2
        "append 3 rows (1 file) to db.t",
        "delete 6 rows (2 files) from db.t; append 1 row (1 file) to db.t",  # overwrite
        "append 3 rows (1 file) to db.t", "append 3 rows (1 file) to db.t"]
    assert log["commits"][0]["properties"]["iceberg.table"] == "db.t"


def test_branch_isolation_merge_tag_and_time_travel(server: EmbeddedServer,
        rest_catalog: Callable[..., Any]) -> None:
    main = rest_catalog(server)
    main.create_namespace("db")
    main.create_table("db.t", schema=ROWS.schema).append(ROWS)
    api = httpx.Client(base_url=server.api_url)
    api.post("/refs", json={"name": "v1", "type": "TAG"}).raise_for_status()
    api.post("/refs", json={"name": "dev"}).raise_for_status()
    before = api.get("/resolve", params={"ref": "main"}).json()["commit_id"]
    time.sleep(0.02)
    at = datetime.now(timezone.utc).isoformat()
    time.sleep(0.02)

    dev = rest_catalog(server, "dev", warehouse="dev")
    dev.load_table("db.t").append(pa.table({"id": pa.array([4], pa.int64()),
                                            "name": pa.array(["d"])}))
    dev.create_table("db.only_dev", schema=ROWS.schema)
    assert ids(dev.load_table("db.t").scan().to_arrow()) == [1, 2, 3, 4]
    assert ids(main.load_table("db.t").scan().to_arrow()) == [1, 2, 3]
    assert not main.table_exists("db.only_dev")
    with pytest.raises(NoSuchTableError):
        main.load_table("db.only_dev")
    # `db@dev` addresses dev from main's prefix
    assert ids(main.load_table(("db@dev", "t")).scan().to_arrow()) == [1, 2, 3, 4]
    assert main.list_tables("db@dev") == [("db@dev", "only_dev"), ("db@dev", "t")]

    merged = api.post("/merge", json={"source": "dev", "target": "main"})
    assert merged.status_code == 200, merged.text
    assert ids(main.load_table("db.t").scan().to_arrow()) == [1, 2, 3, 4]
    assert main.table_exists("db.only_dev")

    # a tag is read-only, whether addressed by prefix or by `db@v1`
    tagged = rest_catalog(server, "tag", warehouse="v1")
    assert ids(tagged.load_table("db.t").scan().to_arrow()) == [1, 2, 3]
    with pytest.raises(ForbiddenError, match="read-only"):
        tagged.load_table("db.t").append(ROWS)
    with pytest.raises(ForbiddenError, match="read-only"):
        main.create_namespace("x@v1")
    with pytest.raises(ForbiddenError):
        main.load_table(("db@v1", "t")).append(ROWS)
    assert ids(main.load_table("db.t").scan().to_arrow()) == [1, 2, 3, 4]

    # time travel: by commit id, by `~N` and by timestamp
    assert ids(main.load_table((f"db@{before}", "t")).scan().to_arrow()) == [1, 2, 3]
    assert ids(rest_catalog(server, "c", warehouse=before[:10]).load_table("db.t")
               .scan().to_arrow()) == [1, 2, 3]
    travel = rest_catalog(server, "tt", warehouse=f"main#{at}")
    assert ids(travel.load_table("db.t").scan().to_arrow()) == [1, 2, 3]
    with pytest.raises(ForbiddenError):
        travel.load_table("db.t").append(ROWS)


def test_concurrent_change_of_one_table_is_a_commit_failure(server: EmbeddedServer,
        rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace("db")
    cat.create_table("db.t", schema=ROWS.schema)
    cat.create_table("db.u", schema=ROWS.schema)
    stale_t = cat.load_table("db.t")
    stale_u = cat.load_table("db.u")
    cat.load_table("db.t").append(ROWS)
    # a commit whose requirement no longer holds: 409 CommitFailed, nothing written
    head = httpx.get(server.api_url + "/resolve", params={"ref": "main"}).json()["commit_id"]
    r = httpx.post(f"{server.iceberg_uri}/v1/main/namespaces/db/tables/t", json={
        "requirements": [{"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": None}],
        "updates": [{"action": "set-properties", "updates": {"x": "1"}}]})
    assert r.status_code == 409 and r.json()["error"]["type"] == "CommitFailedException"
    assert httpx.get(server.api_url + "/resolve",
                     params={"ref": "main"}).json()["commit_id"] == head
    # pyiceberg's own retry (it re-loads and re-applies on 409) makes the stale append land
    stale_t.append(ROWS)
    stale_u.append(ROWS)  # another table: lands although the branch moved
    assert cat.load_table("db.t").scan().to_arrow().num_rows == 6
    assert cat.load_table("db.u").scan().to_arrow().num_rows == 3


def test_stage_create_rename_register_drop(server: EmbeddedServer,
        rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace("db")
    cat.create_namespace("other")
    with cat.create_table_transaction("db.staged", schema=ROWS.schema) as txn:
        txn.append(ROWS)
    assert cat.load_table("db.staged").scan().to_arrow().num_rows == 3
    cat.rename_table("db.staged", "other.moved")
    assert not cat.table_exists("db.staged")
    moved = cat.load_table("other.moved")
    assert moved.scan().to_arrow().num_rows == 3
    with pytest.raises(TableAlreadyExistsError):
        cat.register_table("other.moved", moved.metadata_location)
    # register is for files the catalog does not own: its own tables move by merge
    with pytest.raises(BadRequestError, match="register is for files the catalog does not"):
        cat.register_table("db.copy", moved.metadata_location)
    assert not cat.table_exists("db.copy")
    cat.drop_table("other.moved")
    assert not cat.table_exists("other.moved")
    with pytest.raises(NoSuchTableError):
        cat.drop_table("other.moved")


def test_purge_drops_from_the_branch_only_and_leaves_files_to_gc(
        server: EmbeddedServer, rest_catalog: Callable[..., Any]) -> None:
    from spark_lakeversion.gc import collect_garbage

    cat = rest_catalog(server)
    cat.create_namespace("db")
    table = cat.create_table("db.t", schema=ROWS.schema)
    table.append(ROWS)
    table_dir = Path(urlparse(cat.load_table("db.t").metadata_location).path).parent.parent
    files_before = sorted(table_dir.rglob("*"))
    httpx.post(server.api_url + "/refs", json={"name": "keep"}).raise_for_status()
    cat.purge_table("db.t")
    assert not cat.table_exists("db.t")
    assert sorted(table_dir.rglob("*")) == files_before  # nothing deleted on purge
    keep = rest_catalog(server, "keep", warehouse="keep")
    assert keep.load_table("db.t").scan().to_arrow().num_rows == 3
    old = rest_catalog(server, "old", warehouse="main~1")
    assert old.load_table("db.t").scan().to_arrow().num_rows == 3  # history still reads
    keep.purge_table("db.t")
    assert sorted(table_dir.rglob("*")) == files_before
    # once nothing (no ref, no retained commit) reaches the table, gc reclaims its files
    report = collect_garbage(server.store, roots=[server.warehouse], older_than="0s",
                             force=True, keep_commits_since="0s")
    assert report.deleted and not [f for f in table_dir.rglob("*") if f.is_file()]


def test_transactions_commit_is_all_or_nothing(server: EmbeddedServer,
        rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace("db")
    a = cat.create_table("db.a", schema=ROWS.schema)
    b = cat.create_table("db.b", schema=ROWS.schema)
    url = f"{server.iceberg_uri}/v1/main/transactions/commit"

    def change(table: object, name: str, uuid: str, value: str) -> dict[str, object]:
        return {"identifier": {"namespace": ["db"], "name": name},
                "requirements": [{"type": "assert-table-uuid", "uuid": uuid}],
                "updates": [{"action": "set-properties", "updates": {"k": value}}]}

    head = httpx.get(server.api_url + "/resolve", params={"ref": "main"}).json()["commit_id"]
    bad = httpx.post(url, json={"table-changes": [
        change(a, "a", str(a.metadata.table_uuid), "1"),
        change(b, "b", str(a.metadata.table_uuid), "1")]})  # wrong uuid for b
    assert bad.status_code == 409 and bad.json()["error"]["type"] == "CommitFailedException"
    assert httpx.get(server.api_url + "/resolve",
                     params={"ref": "main"}).json()["commit_id"] == head
    assert "k" not in cat.load_table("db.a").properties
    ok = httpx.post(url, json={"table-changes": [
        change(a, "a", str(a.metadata.table_uuid), "2"),
        change(b, "b", str(b.metadata.table_uuid), "2")]})
    assert ok.status_code == 204, ok.text
    assert cat.load_table("db.a").properties["k"] == "2"
    assert cat.load_table("db.b").properties["k"] == "2"
    log = httpx.get(server.api_url + "/log", params={"ref": "main", "limit": 1}).json()
    assert log["commits"][0]["message"] == "transaction: set-properties db.a; set-properties db.b"


def test_iceberg_errors_probes_and_headers(server: EmbeddedServer,
        rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace("db")
    cat.create_table("db.t", schema=ROWS.schema)
    base = f"{server.iceberg_uri}/v1/main"
    # Spark's probes: namespace `db\x1ft`, table `branch_x`: 404 NoSuchTable
    for path in ["/namespaces/db%1Ft/tables/snapshots", "/namespaces/db/tables/branch_x",
                 "/namespaces/nope/tables/t"]:
        r = httpx.get(base + path)
        assert r.status_code == 404, path
        assert r.json()["error"] == {"message": r.json()["error"]["message"],
                                     "type": "NoSuchTableException", "code": 404}
    assert httpx.get(base + "/namespaces/db%1Ft").status_code == 404
    # bad input: 400 in Iceberg's error model, never a 500
    for body in [b"not json", b"{}", b'{"name": "x", "schema": 5}']:
        r = httpx.post(base + "/namespaces/db/tables", content=body)
        assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequestException"
    r = httpx.post(base + "/namespaces/db/tables/t", json={"updates": [{"action": "nope"}]})
    assert r.status_code == 400
    assert httpx.get(f"{server.iceberg_uri}/v1/config",
                     params={"warehouse": "no-such-ref"}).status_code == 400
    r = httpx.get(f"{server.iceberg_uri}/v1/~!!/namespaces")  # decodes to an empty ref
    assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequestException"
    assert httpx.post(base + "/namespaces/db/tables/t/metrics", json={}).status_code == 204
    # commit metadata from headers
    r = httpx.post(base + "/namespaces", json={"namespace": ["h"]},
                   headers={"X-Lakeversion-Author": "ann", "X-Lakeversion-Message": "why",
                            "X-Lakeversion-Properties": '{"spark.app.id": "app-1"}'})
    assert r.status_code == 200, r.text
    head = httpx.get(server.api_url + "/log", params={"limit": 1}).json()["commits"][0]
    assert (head["author"], head["message"]) == ("ann", "why")
    assert head["properties"]["spark.app.id"] == "app-1"
    r = httpx.post(base + "/namespaces", json={"namespace": ["h2"]},
                   headers={"X-Lakeversion-Properties": "[1"})
    assert r.status_code == 400
    assert not cat.namespace_exists("h2")


def test_pyiceberg_expire_snapshots_only_edits_the_branch_metadata(
        server: EmbeddedServer, rest_catalog: Callable[..., Any]) -> None:
    """pyiceberg's expire_snapshots rewrites metadata and deletes nothing: other refs
    reading the expired snapshot keep reading it."""
    cat = rest_catalog(server)
    cat.create_namespace("db")
    table = cat.create_table("db.t", schema=ROWS.schema)
    table.append(ROWS)
    first = table.current_snapshot()
    assert first is not None
    httpx.post(server.api_url + "/refs", json={"name": "v1", "type": "TAG"}).raise_for_status()
    table.append(ROWS)
    table_dir = Path(urlparse(table.metadata_location).path).parent.parent
    files = sorted(table_dir.rglob("*"))
    table.maintenance.expire_snapshots().by_id(first.snapshot_id).commit()
    assert first.snapshot_id not in {s.snapshot_id for s in cat.load_table("db.t").snapshots()}
    assert set(files) <= set(table_dir.rglob("*"))  # nothing deleted; new metadata only
    tag = rest_catalog(server, "tag", warehouse="v1")
    assert ids(tag.load_table("db.t").scan().to_arrow()) == [1, 2, 3]
    assert cat.load_table("db.t").properties.get("gc.enabled") == "false"  # as served
