"""Content-aware merge of Iceberg tables through the real store (issue 6).

Tables are real pyiceberg tables (SQLite catalog in tmp_path); their contents live on
store branches; merges go through `store.merge(...)`; results are checked by scanning the
merged metadata file with pyiceberg's `StaticTable`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyiceberg.manifest import ManifestEntry
from pyiceberg.table import StaticTable, Table
from pyiceberg.types import LongType, StringType

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.formats.iceberg.codes import (
    CONCURRENT_APPEND_IN_READ_PARTITION,
    CONCURRENT_DELETE,
    CONCURRENT_REWRITE,
    EQUALITY_DELETE_CONFLICT,
    PROPERTY_CONFLICT,
    SCHEMA_CONFLICT,
    SPEC_CONFLICT,
)
from spark_lakeversion.formats.iceberg.merge.rules import DELETE_PREDICATE_PROPERTY
from spark_lakeversion.limits import Limits
from spark_lakeversion.model import (
    ConflictType,
    Content,
    MergeAction,
    MergeBehavior,
    MergeResult,
    Put,
)
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.wiring import open_store
from tests.formats.iceberg.helpers import (
    KEY,
    TableBranches,
    add_delete_file,
    content,
    ids_at,
    live_data_files,
    table_rows,
)


class Env:
    """A store with `main` and `dev` branches over one table with 3 rows in p=0,1,2 each."""

    def __init__(self, tmp_path: Path, limits: Limits | None = None,
                 **lake_options: Any) -> None:
        self.store: VersionStore = open_store(f"sqlite:///{tmp_path / 'store.db'}",
                                              limits=limits)
        self.lake = TableBranches(tmp_path, **lake_options)
        self.main: Table = self.lake.main
        for p in (0, 1, 2):
            self.main.append(self.lake.rows(p, 3, "base"))
        self.store.commit("main", [Put(KEY, content(self.main))], message="base")
        self.base_ids = ids_at(self.main.metadata_location)
        self.store.create_ref("dev", from_ref="main")
        self.dev: Table = self.lake.branch(self.main)

    def commit_main(self, table: Table | None = None) -> None:
        self.main = table or self.main
        self.store.commit("main", [Put(KEY, content(self.main))], message="main change")

    def commit_dev(self, table: Table | None = None) -> None:
        self.dev = table or self.dev
        self.store.commit("dev", [Put(KEY, content(self.dev))], message="dev change")

    def merge(self, source: str = "dev", target: str = "main", **kw: Any) -> MergeResult:
        return self.store.merge(source, target, **kw)

    def location(self, ref: str = "main") -> str:
        c = self.store.get_content(ref, KEY)
        assert c is not None
        return str(c.fields["metadata_location"])

    def files_in(self, p: int, table: Table) -> list[str]:
        return sorted(f for f, v in live_data_files(table.metadata_location).items() if v == p)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def set_properties(table: Table, *pairs: str) -> None:
    with table.transaction() as tx:
        tx.set_properties(dict(zip(pairs[::2], pairs[1::2])))


def live_entries(location: str) -> dict[str, ManifestEntry]:
    """Live manifest entries (with inherited sequence numbers) without scanning rows."""
    table = StaticTable.from_metadata(location)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return {e.data_file.file_path: e for m in snapshot.manifests(table.io)
            for e in m.fetch_manifest_entry(table.io)}


def replayed(result: MergeResult) -> dict[str, Any]:
    assert result.successful, result.conflicts
    [detail] = result.details
    assert detail.action is MergeAction.REPLAYED
    return detail.statistics


def assert_conflict(env: Env, expected: ConflictType, with_details: bool = True,
                    **merge_options: Any) -> ConflictError:
    """The merge raises exactly `expected` and leaves main (store and disk) untouched."""
    head = env.store.get_ref("main").head
    before = env.store.get_content("main", KEY)
    files = env.lake.files_on_disk()
    with pytest.raises(ConflictError) as caught:
        env.merge(**merge_options)
    assert [c.type for c in caught.value.conflicts] == [expected], caught.value.conflicts
    assert caught.value.conflicts[0].key == KEY
    if with_details:
        assert caught.value.conflicts[0].details  # files or fields involved
    assert env.store.get_ref("main").head == head
    assert env.store.get_content("main", KEY) == before
    assert env.lake.files_on_disk() == files
    return caught.value


# ---- commuting changes replay ---------------------------------------------------------
def test_appends_to_the_same_partition_replay_as_one_snapshot(env: Env) -> None:
    env.main.append(env.lake.rows(0, 2, "t"))
    env.commit_main()
    env.dev.append(env.lake.rows(0, 2, "s"))
    env.dev.append(env.lake.rows(0, 1, "s"))
    env.commit_dev()
    source_ids = ids_at(env.dev.metadata_location)
    target_ids = ids_at(env.main.metadata_location)
    target_snapshot = env.main.metadata.current_snapshot_id
    data_files = env.lake.data_files_on_disk()

    stats = replayed(env.merge())

    assert stats["source"]["data_files_added"] == 2 and stats["source"]["rows_added"] == 3
    assert stats["target"]["data_files_added"] == 1 and stats["target"]["rows_added"] == 2
    assert stats["source"]["snapshots"] == 2
    location = env.location()
    assert ids_at(location) == sorted(set(source_ids) | set(target_ids))
    assert env.lake.data_files_on_disk() == data_files  # no data file written
    merged = StaticTable.from_metadata(location)
    snapshot = merged.current_snapshot()
    assert snapshot is not None and snapshot.parent_snapshot_id == target_snapshot
    summary = snapshot.summary
    assert summary is not None
    assert summary["lakeversion.merge.source-ref"] == "dev"
    assert summary["lakeversion.merge.source-commit"] == env.store.get_ref("dev").head
    source_snaps = [s.snapshot_id for s in env.dev.metadata.snapshots[-2:]]
    assert summary["lakeversion.merge.source-snapshot-ids"] == ",".join(map(str, source_snaps))
    # incremental readers see the merged files as ADDED by the merge snapshot
    added = [e for m in snapshot.manifests(merged.io) if m.added_snapshot_id == snapshot.snapshot_id
             for e in m.fetch_manifest_entry(merged.io)]
    assert len(added) == 2 and all(e.status.value == 1 for e in added)
    assert {e.data_file.file_path for e in added} == {
        f for f in live_data_files(env.dev.metadata_location)
        if f not in live_data_files(env.main.metadata_location)}
    assert all(e.sequence_number == snapshot.sequence_number for e in added)


def test_appends_to_different_partitions_replay(env: Env) -> None:
    env.main.append(env.lake.rows(1, 2, "t"))
    env.commit_main()
    env.dev.append(env.lake.rows(2, 2, "s"))
    env.commit_dev()
    expected = sorted(set(ids_at(env.main.metadata_location))
                      | set(ids_at(env.dev.metadata_location)))
    replayed(env.merge())
    assert ids_at(env.location()) == expected


def test_source_delete_in_partition_the_target_did_not_touch(env: Env) -> None:
    env.main.append(env.lake.rows(0, 2, "t"))
    env.commit_main()
    doomed = [i for i in env.base_ids if table_rows(env.dev.metadata_location)[i - 1]["p"] == 2][:2]
    env.dev.delete(f"id in ({doomed[0]}, {doomed[1]})")  # copy-on-write rewrite of p=2
    env.commit_dev()
    data_files = env.lake.data_files_on_disk()
    stats = replayed(env.merge())
    assert stats["source"]["data_files_removed"] == 1
    assert stats["source"]["data_files_added"] == 1
    ids = ids_at(env.location())
    assert not set(doomed) & set(ids)
    assert ids == sorted(set(ids_at(env.main.metadata_location)) - set(doomed))
    assert env.lake.data_files_on_disk() == data_files


def test_source_adds_column_while_target_appends(env: Env) -> None:
    with env.dev.update_schema() as update:
        update.add_column("extra", StringType())
    env.dev = env.lake.catalog.load_table(env.dev.name())
    import pyarrow as pa

    rows = env.lake.rows(1, 2, "s").append_column("extra", pa.array(["x", "y"]))
    env.dev.append(rows)
    env.commit_dev()
    env.main.append(env.lake.rows(0, 2, "t"))
    env.commit_main()
    replayed(env.merge())
    location = env.location()
    merged = StaticTable.from_metadata(location)
    assert merged.schema() == env.dev.schema()
    assert merged.schema().find_field("extra").field_id == 4
    result = table_rows(location)
    assert len(result) == 9 + 2 + 2
    assert sorted(r["extra"] for r in result if r["extra"]) == ["x", "y"]


def test_source_position_deletes_merge_on_read(env: Env) -> None:
    [f2] = env.files_in(2, env.dev)
    env.commit_dev(add_delete_file(env.dev, 2, positions={f2: [0, 2]}))
    deleted = set(env.base_ids) - set(ids_at(env.dev.metadata_location))
    assert len(deleted) == 2
    env.main.append(env.lake.rows(0, 2, "t"))
    env.main.append(env.lake.rows(2, 1, "t"))  # an append after the ancestor: not covered
    env.commit_main()
    stats = replayed(env.merge(options={"isolation_level": "snapshot"}))
    assert stats["source"]["delete_files_added"] == 1
    assert ids_at(env.location()) == sorted(set(ids_at(env.main.metadata_location)) - deleted)


def test_source_changes_partition_spec_and_files_keep_their_spec(env: Env) -> None:
    with env.dev.update_spec() as update:
        update.add_identity("v")
    env.dev = env.lake.catalog.load_table(env.dev.name())
    env.dev.append(env.lake.rows(1, 3, "s"))
    env.commit_dev()
    env.main.append(env.lake.rows(0, 2, "t"))
    env.commit_main()
    replayed(env.merge())
    merged = StaticTable.from_metadata(env.location())
    assert merged.spec() == env.dev.spec() and merged.spec().spec_id == 1
    specs = {t.file.file_path: t.file.spec_id for t in merged.scan().plan_files()}
    source_specs = {t.file.file_path: t.file.spec_id for t in env.dev.scan().plan_files()}
    target_specs = {t.file.file_path: t.file.spec_id for t in env.main.scan().plan_files()}
    assert specs == {**target_specs, **source_specs}
    assert sorted(set(specs.values())) == [0, 1]
    assert len(ids_at(env.location())) == 9 + 3 + 2


def test_repeated_merges_in_both_directions(env: Env) -> None:
    env.main.append(env.lake.rows(0, 1, "t1"))
    env.commit_main()
    env.dev.append(env.lake.rows(1, 1, "s1"))
    env.commit_dev()
    replayed(env.merge())
    first = ids_at(env.location())
    assert len(first) == 11

    # both move on; then main is merged into dev (dev's table still on its own chain)
    env.main = env.lake.catalog.register_table("db.main2", env.location())
    env.main.append(env.lake.rows(2, 1, "t2"))
    env.commit_main()
    env.dev.append(env.lake.rows(0, 1, "s2"))
    env.commit_dev()
    replayed(env.merge(source="main", target="dev"))
    dev_ids = ids_at(env.location("dev"))
    assert dev_ids == sorted(set(ids_at(env.main.metadata_location))
                             | set(ids_at(env.dev.metadata_location)))

    # and back: main changed again, so this is a content merge against the new ancestor
    env.dev = env.lake.catalog.register_table("db.dev2", env.location("dev"))
    env.dev.append(env.lake.rows(1, 1, "s3"))
    env.commit_dev()
    env.main.append(env.lake.rows(2, 1, "t3"))
    env.commit_main()
    stats = replayed(env.merge())
    # s2 and s3: the new ancestor (main after t2) has everything else of dev's
    assert stats["source"]["data_files_added"] == 2
    assert ids_at(env.location()) == sorted(set(ids_at(env.main.metadata_location))
                                            | set(ids_at(env.dev.metadata_location)))
    assert len(ids_at(env.location())) == 9 + 6


def test_dry_run_reports_and_writes_nothing(env: Env) -> None:
    env.main.append(env.lake.rows(0, 2, "t"))
    env.commit_main()
    env.dev.append(env.lake.rows(1, 3, "s"))
    env.commit_dev()
    head = env.store.get_ref("main").head
    files = env.lake.files_on_disk()
    result = env.merge(dry_run=True)
    stats = replayed(result)
    assert result.dry_run and result.new_head is None
    assert stats["source"] == {**stats["source"], "data_files_added": 1, "rows_added": 3}
    assert stats["target"]["rows_added"] == 2
    assert env.store.get_ref("main").head == head
    assert env.lake.files_on_disk() == files


def test_dry_run_reports_a_conflict_with_statistics(env: Env) -> None:
    set_properties(env.main, "owner", "a")
    env.commit_main(env.lake.catalog.load_table(env.main.name()))
    set_properties(env.dev, "owner", "b")
    env.commit_dev(env.lake.catalog.load_table(env.dev.name()))
    result = env.merge(dry_run=True)
    [detail] = result.details
    assert detail.action is MergeAction.CONFLICT
    assert detail.conflict is not None and detail.conflict.type is PROPERTY_CONFLICT
    assert detail.statistics["properties_changed"] == ["owner"]


def test_source_wins_strategy_takes_the_source_whole(env: Env) -> None:
    set_properties(env.main, "owner", "a")
    env.commit_main(env.lake.catalog.load_table(env.main.name()))
    set_properties(env.dev, "owner", "b")
    env.commit_dev(env.lake.catalog.load_table(env.dev.name()))
    result = env.merge(default_behavior=MergeBehavior.FORCE)
    assert result.details[0].action is MergeAction.APPLIED
    assert env.store.get_content("main", KEY) == env.store.get_content("dev", KEY)


def test_both_sides_deleting_the_same_file_is_not_a_conflict(env: Env) -> None:
    env.main.delete("p = 1")  # whole file dropped, nothing rewritten
    env.main.append(env.lake.rows(0, 1, "t"))
    env.commit_main()
    env.dev.delete("p = 1")
    env.dev.append(env.lake.rows(2, 1, "s"))
    env.commit_dev()
    replayed(env.merge())
    ids = ids_at(env.location())
    assert ids == sorted(set(ids_at(env.main.metadata_location))
                         | set(ids_at(env.dev.metadata_location)))


def test_isolation_level_from_table_properties(tmp_path: Path) -> None:
    env = Env(tmp_path, properties={"write.delete.isolation-level": "snapshot",
                                    "write.merge.isolation-level": "snapshot"})
    env.main.append(env.lake.rows(0, 2, "t"))
    env.commit_main()
    env.dev.delete(f"id = {env.base_ids[0]}")  # rewrites p=0, where main appended
    env.commit_dev()
    stats = replayed(env.merge())
    assert stats["isolation_level"] == "snapshot"
    assert ids_at(env.location()) == sorted(set(ids_at(env.main.metadata_location))
                                            - {env.base_ids[0]})


def test_recorded_delete_predicate_avoids_a_false_positive(env: Env) -> None:
    env.main.append(env.lake.rows(0, 2, "t"))  # ids 10, 11: cannot match "id = 1"
    env.commit_main()
    first = env.base_ids[0]
    env.dev.delete(f"id = {first}",
                   snapshot_properties={DELETE_PREDICATE_PROPERTY: f"id = {first}"})
    env.commit_dev()
    replayed(env.merge())
    assert first not in ids_at(env.location())


# ---- each rule raises exactly its conflict --------------------------------------------
def test_rule1_format_versions_differ_is_unsupported(tmp_path: Path) -> None:
    env = Env(tmp_path, format_version=1)
    with env.dev.transaction() as tx:
        tx.upgrade_table_version(2)
    env.dev = env.lake.catalog.load_table(env.dev.name())
    env.dev.append(env.lake.rows(0, 1, "s"))
    env.commit_dev()
    env.main.append(env.lake.rows(1, 1, "t"))
    env.commit_main()
    error = assert_conflict(env, ConflictType.UNSUPPORTED)
    assert "format version" in error.conflicts[0].message


def test_format_v1_tables_replay(tmp_path: Path) -> None:
    env = Env(tmp_path, format_version=1)
    env.dev.append(env.lake.rows(0, 1, "s"))
    env.commit_dev()
    env.main.append(env.lake.rows(1, 1, "t"))
    env.commit_main()
    replayed(env.merge())
    assert len(ids_at(env.location())) == 11


def test_rule2_schema_changed_on_both_sides(env: Env) -> None:
    with env.dev.update_schema() as update:
        update.add_column("a", StringType())
    env.commit_dev(env.lake.catalog.load_table(env.dev.name()))
    with env.main.update_schema() as update:
        update.add_column("b", LongType())
    env.commit_main(env.lake.catalog.load_table(env.main.name()))
    error = assert_conflict(env, SCHEMA_CONFLICT)
    assert error.conflicts[0].details["fields"] == ["a", "b"]


def test_rule3_target_changed_partition_spec(env: Env) -> None:
    with env.main.update_spec() as update:
        update.add_identity("v")
    env.commit_main(env.lake.catalog.load_table(env.main.name()))
    env.dev.append(env.lake.rows(0, 1, "s"))
    env.commit_dev()
    assert_conflict(env, SPEC_CONFLICT)


def test_rule4_same_file_rewritten_on_both_sides(tmp_path: Path) -> None:
    """Past the row merge's limit the file-level conflict stands (the row merge itself:
    tests/formats/iceberg/test_row_merge.py)."""
    env = Env(tmp_path, limits=Limits(max_row_merge_bytes=1))
    ids = {r["id"]: r["p"] for r in table_rows(env.main.metadata_location)}
    in_p1 = [i for i, p in ids.items() if p == 1]
    [f1] = env.files_in(1, env.main)  # the ancestor's p=1 file, rewritten by both
    env.main.delete(f"id = {in_p1[0]}")
    env.commit_main()
    env.dev.delete(f"id = {in_p1[1]}")
    env.commit_dev()
    error = assert_conflict(env, CONCURRENT_REWRITE)
    assert error.conflicts[0].details["files"] == [f1]
    assert "--max-row-memory-bytes" in env.merge(dry_run=True).details[0].statistics[
        "row_merge"]["not_merged"]
    # within the limit the same merge goes down to rows: both deletes apply
    env.store = open_store(env.store.url)
    result = env.merge()
    assert result.successful and result.stats["files_rewritten"] == 1
    assert set(ids_at(env.location())) == set(env.base_ids) - set(in_p1[:2])


def test_rule5_source_position_deletes_point_at_a_file_the_target_removed(tmp_path: Path
                                                                          ) -> None:
    env = Env(tmp_path, limits=Limits(max_row_merge_bytes=1))
    [f1] = env.files_in(1, env.dev)
    env.commit_dev(add_delete_file(env.dev, 1, positions={f1: [1]}))
    env.main.delete("p = 1")  # the whole file goes: no rewrite
    env.commit_main()
    error = assert_conflict(env, CONCURRENT_DELETE)
    assert error.conflicts[0].details["files"] == [f1]
    env.store = open_store(env.store.url)  # by rows: the row is gone on both sides
    assert env.merge().successful
    assert [r["p"] for r in table_rows(env.location())].count(1) == 0


def test_rule6_source_deletes_where_target_appended_under_serializable(env: Env) -> None:
    env.main.append(env.lake.rows(0, 2, "t"))
    env.commit_main()
    env.dev.delete(f"id = {env.base_ids[0]}")  # p=0 rewritten, predicate not recorded
    env.commit_dev()
    error = assert_conflict(env, CONCURRENT_APPEND_IN_READ_PARTITION)
    # at row grain: the target's two new rows in the partition the source deleted from
    assert error.conflicts[0].details["rows"] == 2
    # the same merge under snapshot isolation (per-merge override) replays
    replayed(env.merge(options={"isolation_level": "snapshot"}))
    assert env.base_ids[0] not in ids_at(env.location())


def test_rule7_source_equality_deletes_with_target_appends(tmp_path: Path) -> None:
    """Past the row merge's limit the file-level conflict stands (the row merge of equality
    deletes: tests/formats/iceberg/test_row_merge_equality.py)."""
    env = Env(tmp_path, limits=Limits(max_row_merge_bytes=1))
    env.main.append(env.lake.rows(0, 2, "t"))
    env.commit_main()
    env.commit_dev(add_delete_file(env.dev, 0, equality_ids=[1],
                                   properties={"ids": str(env.base_ids[0])}))
    error = assert_conflict(env, EQUALITY_DELETE_CONFLICT,
                            options={"isolation_level": "snapshot"})
    assert error.result is not None
    assert "--max-row-merge-bytes" in error.result.details[0].statistics[
        "row_merge"]["not_merged"]
    # within the limit it goes down to rows: the delete lands, the target's rows stay
    env.store = open_store(env.store.url)
    result = env.merge(options={"isolation_level": "snapshot"})
    assert result.details[0].statistics["row_merge"]["file_conflicts"] == [
        EQUALITY_DELETE_CONFLICT]
    ids = ids_at(env.location())
    assert env.base_ids[0] not in ids and len(ids) == len(env.base_ids) + 1


def test_rule8_property_changed_on_both_sides(env: Env) -> None:
    set_properties(env.main, "owner", "a", "same", "1")
    env.main = env.lake.catalog.load_table(env.main.name())
    env.main.append(env.lake.rows(0, 1, "t"))
    env.commit_main()
    set_properties(env.dev, "owner", "b", "same", "1")
    env.dev = env.lake.catalog.load_table(env.dev.name())
    env.dev.append(env.lake.rows(1, 1, "s"))
    env.commit_dev()
    error = assert_conflict(env, PROPERTY_CONFLICT)
    assert error.conflicts[0].details["fields"] == ["owner"]


def test_source_only_property_change_is_merged(env: Env) -> None:
    env.main.append(env.lake.rows(0, 1, "t"))
    env.commit_main()
    set_properties(env.dev, "owner", "b")
    env.dev = env.lake.catalog.load_table(env.dev.name())
    env.dev.append(env.lake.rows(1, 1, "s"))
    env.commit_dev()
    replayed(env.merge())
    assert StaticTable.from_metadata(env.location()).properties["owner"] == "b"


def test_without_a_registered_merger_the_table_level_rule_applies(env: Env) -> None:
    from spark_lakeversion.formats.iceberg.format import IcebergFormat
    from spark_lakeversion.tableformat.base import FORMATS

    class WithoutMerger(IcebergFormat):
        def merger(self) -> None:
            return None

    env.main.append(env.lake.rows(0, 1, "t"))
    env.commit_main()
    env.dev.append(env.lake.rows(1, 1, "s"))
    env.commit_dev()
    FORMATS.register(WithoutMerger())
    try:
        assert_conflict(env, ConflictType.VALUE_DIFFERS, with_details=False)
    finally:
        FORMATS.register(IcebergFormat())


def test_plan_apply_is_idempotent_and_discard_removes_its_files(env: Env) -> None:
    from tests.formats.iceberg.helpers import plan

    base = env.store.get_content("main", KEY)
    assert base is not None
    env.main.append(env.lake.rows(0, 1, "t"))
    env.dev.append(env.lake.rows(1, 1, "s"))
    files = env.lake.files_on_disk()
    p = plan(base, content(env.main), content(env.dev))
    first: Content = p.apply()
    assert p.apply() == first
    assert env.lake.files_on_disk() > files
    p.discard()
    assert env.lake.files_on_disk() == files


def test_source_equality_deletes_keep_their_order_among_source_files(env: Env) -> None:
    """A source append, then an equality delete, then another append (all in p=0): the
    delete must still cover the first append and not the second after the replay."""
    env.dev.append(env.lake.rows(0, 2, "s-before"))
    before = set(live_entries(env.dev.metadata_location))
    doomed = env.base_ids[0]
    env.dev = add_delete_file(env.dev, 0, equality_ids=[1], properties={"ids": str(doomed)})
    env.dev.append(env.lake.rows(0, 2, "s-after"))
    env.commit_dev()
    after = {p for p, e in live_entries(env.dev.metadata_location).items()
             if p not in before and e.data_file.content.value == 0}
    env.main.append(env.lake.rows(1, 1, "t"))
    env.commit_main()
    replayed(env.merge())
    merged = StaticTable.from_metadata(env.location())
    snapshot = merged.current_snapshot()
    assert snapshot is not None
    entries = live_entries(env.location())
    [eq] = [e for e in entries.values() if e.data_file.content.value == 2]
    [first] = [e for p, e in entries.items() if p in before and e.snapshot_id ==
               snapshot.snapshot_id]
    [second] = [e for p, e in entries.items() if p in after]
    base_seqs = [e.sequence_number for e in entries.values()
                 if e.snapshot_id != snapshot.snapshot_id]
    assert first.sequence_number is not None and eq.sequence_number is not None
    assert max(base_seqs) <= first.sequence_number < eq.sequence_number  # delete applies
    assert second.sequence_number is not None and second.sequence_number >= eq.sequence_number
    assert eq.sequence_number <= snapshot.sequence_number
