"""Merges of Delta tables changed on both sides, under Delta's own conflict rules: each
conflict type leaves the target unchanged; each commuting case replays the source's actions
as one log version on the target, without writing a data file."""

from __future__ import annotations

from typing import Any

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ConflictError, InvalidInput
from spark_lakeversion.formats.delta.codes import (
    DELTA_CONCURRENT_APPEND,
    DELTA_CONCURRENT_DELETE_DELETE,
    DELTA_CONCURRENT_DELETE_READ,
    DELTA_METADATA_CHANGED,
    DELTA_PROTOCOL_CHANGED,
)
from spark_lakeversion.model import ConflictType, MergeAction
from tests.formats.delta.helpers import (
    ID_P_V_ARROW,
    data,
    data_files,
    independent_rows,
    rows,
    sorted_rows,
)

BASE = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]


def sides(events: Catalog) -> tuple[Any, Any]:
    events.branch("dev").create()
    return events.branch("dev").delta("db.events"), events.branch("main").delta("db.events")


def refused(events: Catalog, conflict: ConflictType, **options: Any) -> None:
    """The merge of dev into main conflicts with `conflict` and main stays as it was."""
    main = events.branch("main")
    head, state = main.head.id, main.delta("db.events").state()
    before = rows(main.delta("db.events"))
    dry = events.store.merge("dev", "main", dry_run=True, **options)
    assert [c.type for c in dry.conflicts] == [conflict]
    with pytest.raises(ConflictError) as caught:
        events.store.merge("dev", "main", **options)
    result = caught.value.result
    assert result is not None and [c.type for c in result.conflicts] == [conflict]
    assert main.head.id == head and main.delta("db.events").state() == state
    assert rows(main.delta("db.events")) == before


def merged(events: Catalog, expected: list[tuple[Any, ...]], **options: Any) -> dict[str, Any]:
    """dev merges into main by replay: no data file written, the rows `expected`."""
    main = events.branch("main").delta("db.events")
    files = data_files(main)
    result = events.store.merge("dev", "main", **options)
    detail = result.details[0]
    assert detail.action is MergeAction.REPLAYED and result.successful
    assert data_files(main) == files  # a merge never writes data
    assert detail.statistics["replay"]["data_bytes_written"] == 0
    assert rows(main) == sorted(expected)
    assert independent_rows(main) == sorted(expected)
    return detail.statistics


def test_appends_on_both_sides_replay(events: Catalog) -> None:
    dev, main = sides(events)
    dev.append(data((5, "a", 50)))
    dev.append(data((6, "c", 60)))
    main.append(data((7, "a", 70)))
    before = main.state()
    stats = merged(events, [*BASE, (5, "a", 50), (6, "c", 60), (7, "a", 70)],
                   options={"isolation_level": "serializable"})
    assert stats["source"]["data_files_added"] == 2 and stats["source"]["blind_append"]
    assert stats["replay"] == {"data_files_added": 2, "files_removed": 0, "rows_added": 2,
                               "metadata_changes": 0, "data_bytes_written": 0}
    after = events.branch("main").delta("db.events").state()
    assert (after.location, after.version) == (before.location, before.version + 1)
    history = events.branch("main").delta("db.events").history(1)
    assert history[0]["operation"] == "LAKEVERSION MERGE"


def test_deletes_in_disjoint_partitions_replay(events: Catalog) -> None:
    dev, main = sides(events)
    dev.delete("p = 'b'")
    main.delete("id = 1")
    merged(events, [(2, "a", 20), (4, "a", 40)])


def test_only_one_side_changed_is_one_version_of_mains_own_log(events: Catalog) -> None:
    """What was a fast-forward: main would read dev's branch log and stop owning its own;
    instead dev's net change is the next version of main's root log, in a merge commit."""
    dev, main = sides(events)
    dev.delete("id = 4")
    before = main.state()
    result = events.store.merge("dev", "main")
    assert not result.fast_forward and result.new_head == events.branch("main").head.id
    assert result.no_ff_reason == ("db.events is a Delta table whose own log 'main' "
                                   "writes: the change is written there as a new version "
                                   "(no fast-forward)")
    assert [d.action for d in result.details] == [MergeAction.APPLIED]
    after = main.state()
    assert (after.location, after.version, after.writer) == (
        before.root, before.version + 1, "main")
    expected = [(1, "a", 10), (2, "a", 20), (3, "b", 30)]
    assert rows(main) == expected == independent_rows(main)


def test_concurrent_append_under_serializable(events: Catalog) -> None:
    dev, main = sides(events)
    dev.delete("id = 1")  # reads partition a
    main.append(data((9, "a", 90)))  # a blind append into it
    refused(events, DELTA_CONCURRENT_APPEND,
            options={"isolation_level": "serializable"})
    # WriteSerializable, the table's default: a blind append does not conflict
    merged(events, [(2, "a", 20), (3, "b", 30), (4, "a", 40), (9, "a", 90)])


def test_concurrent_append_from_a_non_blind_write_under_write_serializable(
        events: Catalog) -> None:
    dev, main = sides(events)
    dev.update({"v": "0"}, "p = 'a'")
    main.merge(data((9, "a", 90)), on="id")  # a MERGE reads: its add is not blind
    refused(events, DELTA_CONCURRENT_APPEND)


def test_isolation_level_table_property(catalog: Catalog) -> None:
    main = catalog.branch("main").delta("t")
    main.create(ID_P_V_ARROW, partition_by=["p"],
                configuration={"delta.isolationLevel": "Serializable"})
    main.append(data((1, "a", 1), (2, "a", 2)))
    catalog.branch("dev").create()
    catalog.branch("dev").delta("t").delete("id = 1")
    main.append(data((3, "a", 3)))
    dry = catalog.store.merge("dev", "main", dry_run=True)
    assert [c.type for c in dry.conflicts] == [DELTA_CONCURRENT_APPEND]
    assert dry.details[0].statistics["isolation_level"] == "Serializable"
    ok = catalog.store.merge("dev", "main", dry_run=True,
                             options={"isolation_level": "snapshot"})
    assert ok.successful
    assert ok.details[0].statistics["isolation_level"] == "WriteSerializable"


def row_merged(events: Catalog, expected: list[tuple[Any, ...]], conflict: ConflictType
               ) -> None:
    """dev merges into main by rows behind the file-level `conflict` (the row merge's own
    tests: tests/formats/delta/test_row_merge.py)."""
    main = events.branch("main").delta("db.events")
    result = events.store.merge("dev", "main")
    assert result.successful
    assert result.details[0].statistics["row_merge"]["file_conflicts"] == [conflict.value]
    assert rows(main) == sorted(expected) == independent_rows(main)


def test_concurrent_delete_read(events: Catalog) -> None:
    dev, main = sides(events)
    dev.delete("id = 1")  # rewrites the file of ids 1, 2; reads partition a
    main.delete("id = 4")  # removes the other file of partition a, adds nothing
    row_merged(events, [(2, "a", 20), (3, "b", 30)], DELTA_CONCURRENT_DELETE_READ)


def test_concurrent_delete_delete(events: Catalog) -> None:
    dev, main = sides(events)
    dev.delete("id = 1")
    main.delete("id = 2")
    row_merged(events, [(3, "b", 30), (4, "a", 40)], DELTA_CONCURRENT_DELETE_DELETE)


def test_metadata_changed(events: Catalog) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    dev, main = sides(events)
    dev.append(data((5, "a", 50)))
    wider = pa.table({"id": [6], "p": ["a"], "v": [60], "w": ["x"]})
    state = main.state()
    write_deltalake(main.table, wider, mode="append", schema_mode="merge")
    from spark_lakeversion.model import Put

    events.branch("main").commit(
        [Put(main.key, state.at(state.version + 1).content())], message="schema change")
    refused(events, DELTA_METADATA_CHANGED)


def test_protocol_changed(events: Catalog) -> None:
    from spark_lakeversion.model import Put

    dev, main = sides(events)
    dev.append(data((5, "a", 50)))
    state = main.state()
    from deltalake import TableFeatures

    main.table.alter.add_feature(TableFeatures.ChangeDataFeed,
                                 allow_protocol_versions_increase=True)
    events.branch("main").commit(
        [Put(main.key, state.at(state.version + 1).content())], message="protocol")
    refused(events, DELTA_PROTOCOL_CHANGED)


def test_a_bad_isolation_level_is_refused_before_anything_runs(events: Catalog) -> None:
    with pytest.raises(InvalidInput, match="isolation_level"):
        events.store.merge("main", "main", options={"isolation_level": "chaos"})


def test_after_a_one_sided_merge_both_branches_keep_their_own_logs(
        events: Catalog) -> None:
    dev, main = sides(events)
    dev.append(data((5, "a", 50)))
    assert not events.store.merge("dev", "main").fast_forward  # replayed on main's log
    assert main.state().location == main.state().root != dev.state().location
    assert rows(main) == rows(dev)
    dev_log = dev.state()
    dev.append(data((6, "b", 60)))  # dev owns its log: in place
    assert (dev.state().location, dev.state().version) == (
        dev_log.location, dev_log.version + 1)
    root = main.state()
    main.append(data((7, "c", 70)))  # and main its own: in place
    assert (main.state().location, main.state().version) == (root.root, root.version + 1)
    assert rows(dev) == sorted([*BASE, (5, "a", 50), (6, "b", 60)])
    merged(events, [*BASE, (5, "a", 50), (6, "b", 60), (7, "c", 70)])
    assert main.state().location == main.state().root
    dev.append(data((8, "a", 80)))
    assert rows(dev) == sorted([*BASE, (5, "a", 50), (6, "b", 60), (8, "a", 80)])


def test_a_replay_onto_a_state_another_branch_owns_starts_a_log_that_removes_right(
        events: Catalog) -> None:
    """feat shares main's log; dev's delete replays onto feat in a new branch log, whose
    remove actions spell the files as that log's version 0 lists them (Delta matches
    removes to adds by path)."""
    dev, main = sides(events)
    dev.delete("p = 'b'")
    main.append(data((5, "a", 50)))
    events.branch("feat").create(from_="main")
    feat = events.branch("feat").delta("db.events")
    assert feat.state().writer == "main"
    result = events.store.merge("dev", "feat")
    assert result.successful and result.details[0].action is MergeAction.REPLAYED
    state = feat.state()
    assert state.location.startswith(state.root + "/_branches/feat-")
    expected = [(1, "a", 10), (2, "a", 20), (4, "a", 40), (5, "a", 50)]
    assert rows(feat) == expected == independent_rows(feat)
    assert sorted_rows(feat.table.to_pyarrow_table()) == expected
    assert rows(main) == sorted([*BASE, (5, "a", 50)])
