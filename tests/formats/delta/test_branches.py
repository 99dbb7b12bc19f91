"""Delta tables on branches: isolation, zero-copy branch logs, row-level edits on branch
logs, time travel at tags and commits, read-only refs, vacuum refused. Every state is also
read by an independent reader (DuckDB) that must see the same rows as deltalake."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import (
    AlreadyExists,
    InvalidInput,
    KeyNotFound,
    LocationNotAllowed,
    ReadOnlyRef,
    UnsafeOperation,
)
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.handle import DeltaHandle
from tests.formats.delta.helpers import (
    ID_P_V_ARROW,
    DeltaLake,
    data,
    data_files,
    independent_rows,
    rows,
)

BASE = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]


def check(handle: DeltaHandle, expected: list[tuple[object, ...]]) -> None:
    """deltalake and the independent reader both see `expected`."""
    assert rows(handle) == sorted(expected)
    assert independent_rows(handle) == sorted(expected)


def test_writes_on_dev_are_invisible_on_main(events: Catalog) -> None:
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    main = events.branch("main").delta("db.events")
    dev.append(data((5, "c", 50)))
    dev.delete("id = 1")
    check(dev, [r for r in BASE if r[0] != 1] + [(5, "c", 50)])
    check(main, BASE)
    assert main.state().location != dev.state().location


def test_the_first_write_lists_the_parents_files_without_copying_them(events: Catalog) -> None:
    main = events.branch("main").delta("db.events")
    before = data_files(main)
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    assert dev.state() == main.state()  # branch creation shares the state: O(1)
    dev.append(data((5, "a", 50)))
    state = dev.state()
    after = data_files(dev)
    assert before < after and len(after - before) == 1  # only the appended file is new
    assert state.location.startswith(state.root + "/_branches/dev-")
    assert (state.version, state.writer) == (1, "dev")
    actions = log.commit_actions(state.location, 0, dev.io_properties)
    added = sorted(a["add"]["path"] for a in actions if "add" in a)
    # the parent's files by a relative path every reader resolves (log.add_path)
    assert len(added) == 3 and all(p.startswith(("../../p=a/", "../../p=b/")) for p in added)
    assert {a["commitInfo"]["operation"] for a in actions if "commitInfo" in a} == {
        "LAKEVERSION BRANCH"}
    assert any("protocol" in a for a in actions) and any("metaData" in a for a in actions)
    check(dev, [*BASE, (5, "a", 50)])


def test_row_level_edits_on_a_branch_log_rewrite_only_the_files_they_touch(
        events: Catalog) -> None:
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    main = events.branch("main").delta("db.events")
    parent_files = data_files(main)
    dev.delete("id = 2")  # parent-owned file: delta-rs refuses it, our rewrite does it
    check(dev, [(1, "a", 10), (3, "b", 30), (4, "a", 40)])
    dev.update({"v": "v + 1"}, "p = 'b'")
    check(dev, [(1, "a", 10), (3, "b", 31), (4, "a", 40)])
    dev.merge(data((4, "a", 400), (9, "z", 90)), on="id")
    check(dev, [(1, "a", 10), (3, "b", 31), (4, "a", 400), (9, "z", 90)])
    dev.overwrite(data((7, "b", 70)), predicate="p = 'b'")
    check(dev, [(1, "a", 10), (4, "a", 400), (7, "b", 70), (9, "z", 90)])
    check(main, BASE)
    assert parent_files <= data_files(main)  # nothing of main's was touched
    ops = [h["operation"] for h in dev.history()]
    assert ops[-1] == "LAKEVERSION BRANCH" and "DELETE" in ops and "MERGE" in ops


def test_row_level_edits_on_an_unpartitioned_branch_table(catalog: Catalog) -> None:
    main = catalog.branch("main").delta("flat")
    main.create(ID_P_V_ARROW)
    main.append(data((1, "x", 1), (2, "y", 2)))
    catalog.branch("dev").create()
    dev = catalog.branch("dev").delta("flat")
    dev.update({"v": "v * 10"}, "id = 2")
    dev.delete("id = 1")
    dev.merge(data((2, "y", 5), (3, "z", 3)), on=["id"])
    check(dev, [(2, "y", 5), (3, "z", 3)])
    check(main, [(1, "x", 1), (2, "y", 2)])


def test_row_level_edits_on_the_tables_own_log_use_delta_rs(events: Catalog) -> None:
    main = events.branch("main").delta("db.events")
    main.delete("id = 1")
    main.update({"v": "0"}, "id = 3")
    main.merge(data((2, "a", 2), (8, "b", 8)), on="id")
    check(main, [(2, "a", 2), (3, "b", 0), (4, "a", 40), (8, "b", 8)])
    assert main.state().location == main.state().root  # still the table's own log


def test_time_travel_at_tags_and_commits(events: Catalog) -> None:
    main = events.branch("main").delta("db.events")
    events.tag("v1").create(from_="main")
    first = events.branch("main").head
    main.delete("p = 'a'")
    check(main, [(3, "b", 30)])
    check(events.ref("v1").delta("db.events"), BASE)
    check(events.ref(first.id).delta("db.events"), BASE)
    check(events.ref("main~1").delta("db.events"), BASE)
    assert events.ref("v1").delta("db.events").version < main.version


def test_writes_to_tags_and_commits_are_refused_and_write_nothing(events: Catalog) -> None:
    events.tag("v1").create(from_="main")
    head = events.branch("main").head.id
    main = events.ref("main").delta("db.events")
    before = data_files(main)
    for ref in ("v1", head, "main~1"):
        handle = events.ref(ref).delta("db.events")
        with pytest.raises(ReadOnlyRef):
            handle.append(data((9, "a", 9)))
        with pytest.raises(ReadOnlyRef):
            handle.delete("id = 1")
    assert data_files(main) == before
    assert events.branch("main").head.id == head


def test_vacuum_is_refused_with_a_pointer_to_lakeversion_gc(events: Catalog) -> None:
    handle = events.branch("main").delta("db.events")
    with pytest.raises(UnsafeOperation, match="lakeversion gc"):
        handle.table.vacuum(retention_hours=0, enforce_retention_duration=False,
                            dry_run=False)
    with pytest.raises(UnsafeOperation, match="lakeversion gc"):
        handle.vacuum()
    check(handle, BASE)


def test_bad_requests_get_typed_errors(events: Catalog, tmp_path: Path) -> None:
    main = events.branch("main")
    with pytest.raises(KeyNotFound):
        main.delta("db.missing").append(data((1, "a", 1)))
    with pytest.raises(InvalidInput, match="not a Delta table"):
        main.delta("db").to_arrow()  # the namespace
    with pytest.raises(AlreadyExists):
        main.delta("db.events").create(ID_P_V_ARROW)
    with pytest.raises(InvalidInput, match="unknown columns: nope"):
        main.delta("db.events").update({"nope": "1"}, "id = 1")
    with pytest.raises(InvalidInput):
        main.delta("db.events").append(pa.table({"other": [1]}))
    with pytest.raises(LocationNotAllowed):
        main.delta("db.elsewhere").register(str(tmp_path / "outside"))
    check(main.delta("db.events"), BASE)


def test_a_table_needing_deletion_vectors_is_refused(lake: DeltaLake) -> None:
    from deltalake import DeltaTable

    catalog = lake.catalog
    location = f"{catalog.warehouse}/dv"
    DeltaTable.create(location, ID_P_V_ARROW, storage_options=lake.storage_options(location),
                      configuration={"delta.enableDeletionVectors": "true"})
    with pytest.raises(InvalidInput, match="deletionVectors"):
        catalog.branch("main").delta("dv").register(location)
    assert catalog.ref("main").entries() == {}


def test_a_registered_table_is_read_in_place_and_branches_on_first_write(
        lake: DeltaLake) -> None:
    from deltalake import write_deltalake

    catalog = lake.catalog
    location = f"{catalog.warehouse}/existing"
    write_deltalake(location, data((1, "a", 1)), partition_by=["p"],
                    storage_options=lake.storage_options(location))
    main = catalog.branch("main").delta("db.existing")
    main.register(location)
    state = main.state()
    assert (state.location, state.version, state.writer) == (location, 0, None)
    main.append(data((2, "b", 2)))  # the registered log stays its owner's: main branches
    assert main.state().location.startswith(location + "/_branches/main-")
    check(main, [(1, "a", 1), (2, "b", 2)])
    check(catalog.ref("main~1").delta("db.existing"), [(1, "a", 1)])


def test_without_deltalake_the_error_says_what_to_install(
        events: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "deltalake", None)  # import deltalake -> ImportError
    with pytest.raises(InvalidInput, match=r"pip install spark-lakeversion\[delta\]"):
        events.ref("main").delta("db.events").to_arrow()
