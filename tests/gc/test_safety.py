"""gc never deletes what it cannot prove is garbage (issue 9): allowed roots, one owner per
location, per-table skips for unreadable history, the minimum grace period.

Stores are seeded as an old store would hold them: table states written straight into the
store with `store.commit` and raw `Content` values, bypassing the server's checks.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from spark_lakeversion.cli.gc import EXIT_SKIPPED_TABLES
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.model import Content, Delete, Key, Put
from spark_lakeversion.server.app import create_app
from spark_lakeversion.wiring import open_store
from tests.gc.helpers import StoreLake

TEN_DAYS = 10 * 86400


def plant(path: Path, data: bytes = b"precious") -> Path:
    """An unrelated, old file that gc must never touch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = time.time() - TEN_DAYS
    os.utime(path, (stamp, stamp))
    return path


def raw_table(store: Any, key: str, table_id: str, metadata_location: str) -> Content:
    """A table state committed straight into the store, as an old store may hold it."""
    content = Content(ICEBERG_TABLE, id=table_id,
                      fields={"metadata_location": metadata_location, "snapshot_id": None})
    store.commit("main", [Put(Key.of(key), content)], message=f"raw {key}")
    return content


def copy_metadata(source: str, target: Path, **changes: Any) -> str:
    """A metadata file like `source` (a file URI) with top-level fields changed."""
    data = json.loads(Path(source[len("file://"):]).read_text())
    data.update(changes)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data))
    return target.as_uri()


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[StoreLake]:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield StoreLake(tmp_path, store)
    store.close()


@pytest.fixture
def seeded(lake: StoreLake) -> dict[str, Any]:
    """An old store holding every kind of offending table next to two good ones."""
    tmp = lake.root
    good = lake.create("main", "good", [1])  # alone in its location: collected as usual
    orphan = plant(Path(lake.location("good")[len("file://"):]) / "data" / "orphan.parquet")
    shared = lake.create("main", "shared", [2])
    shared_orphan = plant(Path(lake.location("shared")[len("file://"):]) / "data" / "o.parquet")
    # another table id whose metadata names the same location (a copy of its metadata)
    twin_meta = copy_metadata(shared.fields["metadata_location"],
                              lake.warehouse / "db" / "twin" / "metadata" / "v1.metadata.json",
                              **{"table-uuid": "00000000-0000-0000-0000-00000000000b"})
    twin = raw_table(lake.store, "db.twin", "00000000-0000-0000-0000-00000000000b", twin_meta)
    # a table whose location is the parent of the warehouse (issue 9, case 4)
    parent_meta = copy_metadata(good.fields["metadata_location"],
                                lake.warehouse / "db" / "up" / "metadata" / "v1.metadata.json",
                                location=tmp.as_uri(),
                                **{"table-uuid": "00000000-0000-0000-0000-00000000000c"})
    up = raw_table(lake.store, "db.up", "00000000-0000-0000-0000-00000000000c", parent_meta)
    # a raw content whose metadata file lies outside the warehouse, put then deleted
    outside = tmp / "elsewhere" / "metadata" / "v1.metadata.json"
    copy_metadata(good.fields["metadata_location"], outside,
                  location=outside.parent.parent.as_uri(),
                  **{"table-uuid": "00000000-0000-0000-0000-00000000000d"})
    gone = raw_table(lake.store, "db.gone", "00000000-0000-0000-0000-00000000000d",
                     outside.as_uri())
    lake.store.commit("main", [Delete(Key.of("db.gone"))], message="drop raw gone")
    planted = {
        plant(tmp / "ten_days_old.txt"),  # in the warehouse's parent
        plant(tmp / "elsewhere" / "data" / "old.parquet"),
        shared_orphan,
        outside,
    }
    for path in planted:
        stamp = time.time() - TEN_DAYS
        os.utime(path, (stamp, stamp))
    lake.age()
    return {"good": good, "shared": shared, "twin": twin, "up": up, "gone": gone,
            "orphan": orphan, "planted": {p: p.read_bytes() for p in planted}}


def check_report(report: dict[str, Any], seeded: dict[str, Any]) -> None:
    skipped = {e["content_id"]: e for e in report["skipped_tables"]}
    assert set(skipped) == {seeded[n].id for n in ("shared", "twin", "up", "gone")}
    assert skipped[seeded["shared"].id]["keys"] == ["db.shared"]
    assert skipped[seeded["twin"].id]["keys"] == ["db.twin"]
    assert any("overlaps" in r and seeded["twin"].id in r
               for r in skipped[seeded["shared"].id]["reasons"])
    assert any("overlaps" in r and seeded["shared"].id in r
               for r in skipped[seeded["twin"].id]["reasons"])
    assert any("outside the allowed locations" in r
               for r in skipped[seeded["up"].id]["reasons"])
    assert skipped[seeded["gone"].id]["keys"] == ["db.gone"]  # in retained history
    assert any("outside the allowed locations" in r and "elsewhere" in r
               for r in skipped[seeded["gone"].id]["reasons"])
    # only the good table's location was listed, and only its orphan is garbage
    assert [f["path"] for f in report["files"]] == [seeded["orphan"].as_uri()]


def test_offending_tables_are_reported_and_their_files_survive(
        lake: StoreLake, seeded: dict[str, Any]) -> None:
    runner = CliRunner()
    url = lake.store.url
    dry = runner.invoke(cli, ["--store", url, "-o", "json", "gc", "--dry-run",
                              "--warehouse", lake.warehouse.as_uri()])
    assert dry.exit_code == EXIT_SKIPPED_TABLES, dry.output
    report = json.loads(dry.output)
    check_report(report, seeded)
    assert report["locations"] == [lake.location("good")]
    assert seeded["orphan"].exists()

    text = runner.invoke(cli, ["--store", url, "gc", "--warehouse", str(lake.warehouse)])
    assert text.exit_code == EXIT_SKIPPED_TABLES, text.output
    assert "deleted 1 file(s)" in text.output
    assert "skipped 4 table(s)" in text.output
    assert f"table {seeded['up'].id} db.up" in text.output
    assert not seeded["orphan"].exists()  # gc went on for the good table
    for path, data in seeded["planted"].items():
        assert path.read_bytes() == data, path
    assert all(Path(p[len("file://"):]).exists() for p in
               (seeded["shared"].fields["metadata_location"],
                seeded["twin"].fields["metadata_location"]))


def test_offending_tables_over_rest_use_the_servers_roots(
        lake: StoreLake, seeded: dict[str, Any]) -> None:
    with TestClient(create_app(lake.store, str(lake.warehouse))) as client:
        dry = client.post("/api/v1/gc", json={"older_than": "1d", "dry_run": True})
        assert dry.status_code == 200
        check_report(dry.json(), seeded)
        done = client.post("/api/v1/gc", json={"older_than": "1d"})
        assert done.status_code == 200 and done.json()["deleted_files"] == 1
        state = client.get("/api/v1/gc/state").json()
        assert state["epoch"] == 1 and state["cutoff"] and state["retained_since"]
    for path, data in seeded["planted"].items():
        assert path.read_bytes() == data, path


def test_an_allowed_location_adds_a_root(lake: StoreLake, seeded: dict[str, Any]) -> None:
    """With the parent of the warehouse allowed, `up` is inside the roots but contains
    every other table: it still overlaps them, so nothing under it is listed."""
    report = collect_garbage(lake.store, roots=[*lake.roots, lake.root.as_uri()],
                             older_than="1d", dry_run=True)
    skipped = {e["content_id"]: e for e in report.skipped_tables}
    assert any("overlaps" in r for r in skipped[seeded["up"].id]["reasons"])
    assert seeded["good"].id in skipped  # inside `up`'s location: shared now
    assert report.garbage == []


def test_bad_manifest_lists_skip_their_table_only(lake: StoreLake) -> None:
    """An add-snapshot whose manifest list is /etc/passwd, or a file that is missing, is
    reported for its table; gc carries on for the others (issue 9, case 5)."""
    good = lake.create("main", "good", [1])
    orphan = plant(Path(lake.location("good")[len("file://"):]) / "data" / "orphan.parquet")
    template = json.loads(Path(good.fields["metadata_location"][len("file://"):]).read_text())
    bad_ids = {}
    for name, manifest_list in (("passwd", "/etc/passwd"),
                                ("missing", lake.location("missing") + "/metadata/snap.avro")):
        table_id = f"00000000-0000-0000-0000-0000000000{len(bad_ids) + 10}"
        snapshot = dict(template["snapshots"][0], **{"manifest-list": manifest_list})
        meta = copy_metadata(good.fields["metadata_location"],
                             lake.warehouse / "db" / name / "metadata" / "v1.metadata.json",
                             location=lake.location(name), snapshots=[snapshot],
                             **{"table-uuid": table_id})
        raw_table(lake.store, f"db.{name}", table_id, meta)
        bad_ids[name] = table_id
    kept = plant(Path(lake.location("missing")[len("file://"):]) / "data" / "old.parquet")
    lake.age()
    report = collect_garbage(lake.store, roots=lake.roots, older_than="1d")
    skipped = {e["content_id"]: e["reasons"] for e in report.skipped_tables}
    assert set(skipped) == set(bad_ids.values())
    (passwd,) = skipped[bad_ids["passwd"]]
    assert "file:///etc/passwd" in passwd and "outside the allowed locations" in passwd
    (missing,) = skipped[bad_ids["missing"]]
    assert "snap.avro" in missing and "FileNotFoundError" in missing
    assert [f.path for f in report.garbage] == [orphan.as_uri()] and report.deleted == 1
    assert kept.read_bytes() == b"precious"
    assert Path("/etc/passwd").exists()


def test_a_symlinked_directory_inside_a_table_is_not_followed_out(lake: StoreLake,
                                                                  tmp_path: Path) -> None:
    lake.create("main", "a", [1])
    outside = plant(tmp_path / "outside" / "victim.parquet")
    link = Path(lake.location("a")[len("file://"):]) / "data" / "link"
    link.symlink_to(outside.parent, target_is_directory=True)
    lake.age()
    report = collect_garbage(lake.store, roots=lake.roots, older_than="1d")
    assert outside.read_bytes() == b"precious"
    assert report.deleted == 0
    shutil.rmtree(tmp_path / "outside")


@pytest.mark.parametrize("older_than", ["0s", "59m", 3599])
def test_a_grace_period_below_one_hour_needs_force(lake: StoreLake, older_than: Any) -> None:
    lake.create("main", "a", [1])
    orphan = plant(Path(lake.location("a")[len("file://"):]) / "data" / "orphan.parquet")
    with pytest.raises(InvalidInput, match="below the minimum of 1h"):
        collect_garbage(lake.store, roots=lake.roots, older_than=older_than)
    assert orphan.exists()
    assert lake.store.gc_state().epoch == 0  # refused before anything was recorded
    runner = CliRunner()
    refused = runner.invoke(cli, ["--store", lake.store.url, "-o", "json", "gc",
                                  "--older-than", str(older_than),
                                  "--warehouse", lake.warehouse.as_uri()])
    assert refused.exit_code == 1
    error = json.loads(refused.output)["error"]
    assert error["code"] == "INVALID_INPUT" and "--force" in error["message"]
    assert orphan.exists()
    with TestClient(create_app(lake.store, str(lake.warehouse))) as client:
        answer = client.post("/api/v1/gc", json={"older_than": older_than})
        assert answer.status_code == 400
        assert "minimum of 1h" in answer.json()["error"]["message"]
        assert client.post("/api/v1/gc", json={"older_than": older_than,
                                               "force": True}).status_code == 400
    assert orphan.exists()
    forced = runner.invoke(cli, ["--store", lake.store.url, "-o", "json", "gc",
                                 "--older-than", str(older_than), "--force",
                                 "--warehouse", lake.warehouse.as_uri()])
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.output)["deleted_files"] == 1
    assert not orphan.exists()
    assert lake.store.gc_state().epoch == 1


def test_gc_needs_roots_and_a_server_keeps_its_own(lake: StoreLake) -> None:
    with pytest.raises(InvalidInput, match="allowed roots"):
        collect_garbage(lake.store, older_than="1d")
    result = CliRunner().invoke(cli, ["--store", lake.store.url, "-o", "json", "gc",
                                      "--warehouse", "relative/../path?x"])
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "INVALID_INPUT"


def test_a_store_created_before_gc_state_existed_opens_and_collects(lake: StoreLake) -> None:
    """An existing store has no `lv_gc_state` table: opening it adds one (epoch 0), and
    every commit stays usable until the first real gc run."""
    import sqlalchemy as sa

    first = lake.create("main", "a", [1])
    old_commit = lake.store.get_ref("main").head
    url = lake.store.url
    lake.store.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE lv_gc_state"))
    engine.dispose()
    store = open_store(url)
    try:
        assert store.gc_state().epoch == 0 and store.gc_state().cutoff is None
        store.create_ref("from-old", from_ref=old_commit)
        report = collect_garbage(store, roots=lake.roots, older_than="1d")
        assert report.gc_epoch == 1 and report.skipped_tables == []
        assert store.get_content("main", "db.a") == first
    finally:
        store.close()
