"""`collect_garbage` on real pyiceberg tables recorded on branches and tags of a real store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.table import StaticTable

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.gc import GcReport, collect_garbage
from spark_lakeversion.gc.durations import parse_duration
from spark_lakeversion.locations import normalize_path
from spark_lakeversion.model import RefType
from spark_lakeversion.versioning.sql import SqlVersionStore
from spark_lakeversion.wiring import open_store
from tests.gc.helpers import StoreLake


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[StoreLake]:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield StoreLake(tmp_path, store)
    store.close()


def gc(lake: StoreLake, **options: Any) -> GcReport:
    """`collect_garbage` over the lake's store, under its warehouse."""
    return collect_garbage(lake.store, roots=lake.roots, **options)


def all_reads(lake: StoreLake) -> dict[str, dict[str, list[tuple[int, str]]]]:
    """What every ref (and every commit reachable from one) reads."""
    out = {}
    for ref in lake.store.list_refs():
        out[ref.name] = lake.read(ref.name)
        for commit in lake.store.log(ref.name, limit=1000).commits:
            out[commit.id] = lake.read(commit.id)
    return out


def branched(lake: StoreLake) -> tuple[set[str], set[str]]:
    """main with two tables; `dev` appends to one and creates a third table; main moves
    on afterwards. Returns (files before dev wrote, files dev wrote)."""
    lake.create("main", "a", [1, 2])
    lake.create("main", "b", [10])
    before = lake.files()
    lake.store.create_ref("dev", RefType.BRANCH, "main")
    lake.append("dev", "a", [3])
    lake.create("dev", "c", [5])
    lake.append("dev", "c", [6])
    dev_files = lake.files() - before
    lake.append("main", "a", [4])
    return before, dev_files


def test_dropping_a_branch_reclaims_exactly_its_unique_files(lake: StoreLake) -> None:
    _, dev_files = branched(lake)
    assert len(dev_files) >= 10  # metadata, manifest lists, manifests, data of a and c
    lake.age()
    kept = gc(lake, older_than="1d")
    assert kept.deleted == 0 and kept.garbage == []  # dev still holds them

    reads_before = {"main": lake.read("main")}
    lake.store.delete_ref("dev", force=True)
    on_disk = lake.files()
    report = gc(lake, older_than="1d")
    assert {f.path for f in report.garbage} == dev_files
    assert report.deleted == len(dev_files)
    assert lake.files() == on_disk - dev_files
    assert report.bytes_reclaimed == sum(f.size for f in report.garbage) > 0
    assert {"main": lake.read("main")} == reads_before
    # c lived only on dev: its location was still listed (found through the store)
    assert lake.location("c") in report.locations
    assert gc(lake, older_than="1d").garbage == []


def test_gc_never_breaks_a_read_at_any_retained_ref(lake: StoreLake) -> None:
    lake.create("main", "a", [1])
    lake.store.create_ref("v1", RefType.TAG, "main")
    lake.append("main", "a", [2])
    lake.create("main", "b", [20])
    lake.store.create_ref("feature", RefType.BRANCH, "main")
    lake.append("feature", "b", [21])
    lake.append("feature", "a", [3])
    lake.store.merge("feature", "main")
    lake.store.delete_ref("feature", force=True)
    lake.append("main", "b", [22])
    before_recreate = lake.files()
    # dropped and re-created, at a location of its own (as the REST catalog does: a
    # location shared by two table ids is never collected, see test_gc_safety)
    lake.create("main", "a", [7], location=lake.location("a2"))
    lake.store.create_ref("dev", RefType.BRANCH, "v1")
    lake.append("dev", "a", [100])
    lake.age()
    expected = all_reads(lake)

    report = gc(lake, older_than="1d")  # full history is retained
    assert report.garbage == []
    assert all_reads(lake) == expected

    # heads only: history between the heads goes, every head still reads the same
    heads = {r.name: lake.read(r.name) for r in lake.store.list_refs()}
    report = gc(lake, older_than="1d", keep_commits_since="0s")
    assert report.deleted > 0
    assert any("/db/a/data/" in f.path for f in report.garbage)  # old a's [2] and [3]
    assert {r.name: lake.read(r.name) for r in lake.store.list_refs()} == heads
    assert heads["v1"] == {"db.a": [(1, "v1")]}
    assert heads["main"]["db.a"] == [(7, "v7")]
    assert all(f.path in before_recreate for f in report.garbage)


def test_history_within_the_window_stays_readable(lake: StoreLake) -> None:
    lake.create("main", "a", [1])
    lake.append("main", "a", [2])
    lake.append("main", "a", [3])
    lake.age()
    old = lake.read("main~2")
    # commits are minutes old: a 1h window keeps them, a zero window does not
    assert gc(lake, older_than="1d", keep_commits_since="1h").garbage == []
    assert lake.read("main~2") == old
    report = gc(lake, older_than="1d", keep_commits_since="0s")
    # main's metadata keeps every snapshot (no expiry), so only old metadata.json files
    # (not in main's metadata log: pyiceberg's log keeps them all) could go -> none here
    assert all(p.endswith(".metadata.json") for p in (f.path for f in report.garbage))
    assert lake.read("main") == {"db.a": [(1, "v1"), (2, "v2"), (3, "v3")]}


def test_a_dry_run_deletes_nothing(lake: StoreLake) -> None:
    _, dev_files = branched(lake)
    lake.store.delete_ref("dev", force=True)
    lake.age()
    on_disk = lake.files()
    report = gc(lake, older_than="1d", dry_run=True)
    assert {f.path for f in report.garbage} == dev_files
    assert report.deleted == 0 and report.bytes_reclaimed == 0
    assert report.to_dict()["garbage_bytes"] > 0
    assert lake.files() == on_disk


def test_files_younger_than_the_grace_period_are_kept(lake: StoreLake) -> None:
    _, dev_files = branched(lake)
    lake.store.delete_ref("dev", force=True)
    old = set(sorted(dev_files)[: len(dev_files) // 2])
    lake.age(paths=lake.files() - (dev_files - old))  # half of dev's files stay young
    report = gc(lake, older_than="3h")
    assert {f.path for f in report.garbage} == old
    assert report.kept_young == len(dev_files - old)
    assert (dev_files - old) <= lake.files()
    # the same run a day later (per `now`) takes the rest
    later = datetime.now(timezone.utc) + timedelta(days=1)
    report = gc(lake, older_than="3h", now=later)
    assert {f.path for f in report.garbage} == dev_files - old
    assert not (dev_files & lake.files())


def test_an_orphan_file_in_a_table_location_is_collected(lake: StoreLake) -> None:
    lake.create("main", "a", [1])
    orphan = Path(lake.location("a")[len("file://"):]) / "data" / "orphan.parquet"
    orphan.write_bytes(b"x" * 123)
    lake.age()
    report = gc(lake, older_than="1d")
    assert [f.path for f in report.garbage] == [orphan.as_uri()]
    assert report.bytes_reclaimed == 123
    assert not orphan.exists()
    assert lake.read("main") == {"db.a": [(1, "v1")]}


def test_each_manifest_is_read_once_though_branches_share_them(lake: StoreLake) -> None:
    lake.create("main", "a", [1])
    lake.append("main", "a", [2])
    lake.append("main", "a", [3])
    for name in ("b1", "b2", "b3"):
        lake.store.create_ref(name, RefType.BRANCH, "main")
        lake.append(name, "a", [int(name[1]) * 10])
    # what each ref's metadata references on its own, summed: shared manifests count often
    per_ref = 0
    distinct: set[str] = set()
    for ref in lake.store.list_refs():
        content = lake.store.get_content(ref.name, "db.a")
        assert content is not None
        table = StaticTable.from_metadata(content.fields["metadata_location"])
        for snapshot in table.metadata.snapshots:
            paths = [m.manifest_path for m in snapshot.manifests(table.io)]
            per_ref += len(paths)
            distinct.update(normalize_path(p) for p in paths)
    report = gc(lake, older_than="1d", dry_run=True)
    assert per_ref > len(distinct)  # sharing is real
    assert report.manifests_total == len(distinct)
    assert report.manifests_read == len(distinct)
    assert report.manifest_references > report.manifests_read
    assert report.max_reads_per_file == 1
    assert report.to_dict()["max_reads_per_file"] == 1


def test_unreadable_history_skips_that_table_and_collects_the_rest(lake: StoreLake) -> None:
    _, dev_files = branched(lake)
    lake.store.delete_ref("dev", force=True)
    content = lake.store.get_content("main", "db.b")
    assert content is not None
    missing = content.fields["metadata_location"]
    os.remove(missing[len("file://"):])
    lake.age()
    b_files = {f for f in lake.files() if f.startswith(lake.location("b") + "/")}
    report = gc(lake, older_than="1d")
    assert [(e["content_id"], e["keys"]) for e in report.skipped_tables] == \
        [(content.id, ["db.b"])]
    (reason,) = report.skipped_tables[0]["reasons"]
    assert reason.startswith(f"cannot read {normalize_path(missing)}: FileNotFoundError")
    assert lake.location("b") not in report.locations
    assert {f.path for f in report.garbage} == dev_files  # a and c: collected as before
    assert b_files and b_files <= lake.files()  # nothing of b was touched
    assert not (dev_files & lake.files())
    a_now = lake.store.get_content("main", "db.a")
    assert a_now is not None
    ids = StaticTable.from_metadata(a_now.fields["metadata_location"]).scan().to_arrow()["id"]
    assert sorted(ids.to_pylist()) == [1, 2, 4]


class CommitsWhileGcLists(SqlVersionStore):
    """A real store that lets a slow writer commit right after gc listed the files."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls = 0
        self.writer: object = None

    def list_refs(self, type: RefType | None = None) -> list:  # type: ignore[type-arg]
        self.calls += 1
        if self.calls == 3 and callable(self.writer):  # 1st call of the post-listing re-read
            self.writer()
        return super().list_refs(type)


def test_a_commit_landing_after_the_listing_is_respected(tmp_path: Path) -> None:
    store = CommitsWhileGcLists(f"sqlite:///{tmp_path / 'store.db'}")
    lake = StoreLake(tmp_path, store)
    lake.create("main", "a", [1])
    lake.store.create_ref("dev", RefType.BRANCH, "main")
    lake.append("dev", "a", [2])
    dev_state = lake.store.get_content("dev", "db.a")
    lake.store.delete_ref("dev", force=True)  # dev's files are garbage now...
    lake.age()

    def slow_writer_commits() -> None:  # ...until a writer commits that state to main
        from spark_lakeversion.model import Key, Put

        assert dev_state is not None
        SqlVersionStore.commit(store, "main", [Put(Key.of("db.a"), dev_state)],
                               message="late commit of files written long ago")

    store.writer = slow_writer_commits
    report = collect_garbage(store, roots=lake.roots, older_than="1d")
    assert report.garbage == []
    assert lake.read("main") == {"db.a": [(1, "v1"), (2, "v2")]}
    store.close()


def test_durations_and_paths() -> None:
    assert parse_duration("3h") == timedelta(hours=3)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("0s") == timedelta(0)
    for bad in ("", "3 parsecs", "-1d", "h", 1.1e289, float("nan"), "99999999999w"):
        with pytest.raises(InvalidInput):
            parse_duration(bad)
    assert normalize_path("/tmp/x/../y") == "file:///tmp/y"
    assert normalize_path("file:/tmp/y") == normalize_path("file:///tmp/y") == "file:///tmp/y"
    assert normalize_path("s3a://b/k") == "s3://b/k"


def test_fast_avro_path_reads_match_pyiceberg(lake: StoreLake) -> None:
    """The cached-resolution reader gives exactly pyiceberg's answer, partitioned or not."""
    from spark_lakeversion.formats.iceberg.avro import _fallback, _fast
    from tests.gc.helpers import GC_ROWS_SCHEMA, rows

    lake.create("main", "a", [1, 2])
    lake.append("main", "a", [3])
    tbl = lake.iceberg.create_table("db.parted", schema=GC_ROWS_SCHEMA,
                                    location=lake.location("parted"))
    with tbl.update_spec() as spec:
        spec.add_identity("id")
    tbl.append(rows([1, 2, 3]))
    tbl.delete("id = 2")  # copy-on-write: a DELETED entry in the new manifests
    checked = 0
    for table in (tbl, lake.iceberg.load_table("db.a__main")):
        for snapshot in table.metadata.snapshots:
            lists = _fast(table.io, snapshot.manifest_list, "manifest_list")
            assert lists == _fallback(table.io, snapshot.manifest_list, "manifest_list")
            for manifest in lists:
                files = _fast(table.io, manifest, "manifest")
                assert files == _fallback(table.io, manifest, "manifest") != []
                checked += 1
    assert checked >= 6
