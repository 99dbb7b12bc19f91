"""A Delta table created on a branch other than main starts on a branch log of that
branch: its root log does not exist, so plain readers of the table root (DuckDB's
`delta_scan`, deltalake's `DeltaTable(root)`) read no table at all, never a state no gate
checked. The merge that gives main the table writes main's state as version 0 of the root
log (put-if-absent, a merge commit that says why); from then on the root log is main's:
dev's next writes stay on dev's log, main's land on the root in place. On local files and
on S3 (moto)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ChecksFailed, ConflictError, Forbidden
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.model import Key, MergeAction
from spark_lakeversion.versioning.protection import no_ff_reason
from tests.formats.delta.helpers import (
    ID_P_V_ARROW,
    DeltaLake,
    Rows,
    all_files,
    data,
    independent_rows,
    live_files,
    newest_version,
    own_log,
    plain_rows,
    principals_lake,
    rows,
)

NEW_REASON = ("db.fresh is a Delta table new to 'main', whose root log it takes: the table "
              "is written there as version 0 (no fast-forward)")
NEGATIVE = "SELECT id FROM db.fresh WHERE v < 0"


def fresh_on(catalog: Catalog, branch: str, *rows_: tuple[int, str, int]) -> DeltaState:
    """`db.fresh` created on `branch` (made from main) with `rows_` appended: its state."""
    catalog.branch(branch).create()
    fresh = catalog.branch(branch).delta("db.fresh")
    fresh.create(ID_P_V_ARROW)
    if rows_:
        fresh.append(data(*rows_))
    return fresh.state()


def no_table_at(lake: DeltaLake, root: str) -> None:
    """Plain readers of `root` find no Delta table there (each says so its own way), and
    the root holds no log file."""
    import duckdb
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    assert log.latest_version(root, lake.io) is None
    assert own_log(lake, root) == {}
    con = lake.duckdb()
    try:
        with pytest.raises(duckdb.Error):
            con.execute(f"SELECT id, p, v FROM delta_scan('{root}')").fetchall()
    finally:
        con.close()
    with pytest.raises(TableNotFoundError):
        DeltaTable(root, storage_options=lake.storage_options(root))


def main_on_root(lake: DeltaLake, catalog: Catalog, root: str, version: int,
                 expected: Rows) -> DeltaState:
    """Main's `db.fresh` is `version` of the root log (its newest, main writing), and
    every reader (plain readers of the root, our handle, an independent reader) reads
    `expected`."""
    handle = catalog.branch("main").delta("db.fresh")
    state = handle.state()
    assert (state.location, state.version, state.writer) == (root, version, "main")
    assert newest_version(root, lake.io) == version
    assert plain_rows(lake, root) == {"duckdb": expected, "deltalake": expected}
    assert rows(handle) == expected == independent_rows(handle)
    return state


def test_a_table_created_on_a_branch_writes_no_root_log(
        lake: DeltaLake, events: Catalog) -> None:
    dev = fresh_on(events, "dev", (1, "a", 1), (2, "b", 2))
    assert dev.writer == "dev" and dev.location.startswith(dev.root + "/_branches/dev-")
    assert rows(events.branch("dev").delta("db.fresh")) == [(1, "a", 1), (2, "b", 2)]
    assert independent_rows(events.branch("dev").delta("db.fresh")) == [
        (1, "a", 1), (2, "b", 2)]
    assert all(uri.startswith(dev.location + "/") for uri, _ in live_files(dev, lake.io))
    no_table_at(lake, dev.root)
    events.branch("dev").delta("db.fresh").delete("id = 1")  # dev writes in place
    after = events.branch("dev").delta("db.fresh").state()
    assert (after.location, after.version) == (dev.location, dev.version + 1)
    no_table_at(lake, dev.root)
    events.branch("dev").delta("db.other").create(ID_P_V_ARROW)  # main still creates
    main_table = events.branch("main").delta("db.other")  # on its root log
    main_table.create(ID_P_V_ARROW)
    assert main_table.state().location == main_table.state().root


def test_merging_a_new_table_into_main_writes_root_version_0(
        lake: DeltaLake, events: Catalog) -> None:
    dev = fresh_on(events, "dev", (1, "a", 1), (2, "b", 2))
    dry = events.store.merge("dev", "main", dry_run=True)
    assert (dry.fast_forward, dry.no_ff_reason) == (False, NEW_REASON)
    no_table_at(lake, dev.root)  # a dry run writes nothing
    result = events.store.merge("dev", "main")
    assert (result.fast_forward, result.no_ff_reason) == (False, NEW_REASON)
    assert result.new_head == events.branch("main").head.id
    assert {str(d.key): d.action for d in result.details} == {
        "db.fresh": MergeAction.APPLIED}
    assert events.store.get_commit(result.new_head).parents == (
        result.target_head_before, events.branch("dev").head.id)
    merged = [(1, "a", 1), (2, "b", 2)]
    main_on_root(lake, events, dev.root, 0, merged)
    info = log.commit_info(0, dev.root, lake.io)
    assert info["operation"] == log.OP_MERGE
    assert info["operationParameters"] == {"sourceLocation": dev.location,
                                           "sourceVersion": str(dev.version)}
    # no data file copied: the root log names dev's files
    main_files = {uri for uri, _ in live_files(
        events.branch("main").delta("db.fresh").state(), lake.io)}
    assert main_files == {uri for uri, _ in live_files(dev, lake.io)}
    assert events.branch("dev").delta("db.fresh").state() == dev  # dev keeps its log

    dev_handle = events.branch("dev").delta("db.fresh")
    dev_handle.append(data((3, "a", 3)))  # dev's next write does not reach the root
    assert (dev_handle.state().location, dev_handle.state().version) == (
        dev.location, dev.version + 1)
    assert newest_version(dev.root, lake.io) == 0
    assert plain_rows(lake, dev.root) == {"duckdb": merged, "deltalake": merged}

    main = events.branch("main").delta("db.fresh")
    main.append(data((4, "b", 4)))  # main's next write lands on the root in place
    main_on_root(lake, events, dev.root, 1, [*merged, (4, "b", 4)])
    assert rows(dev_handle) == [*merged, (3, "a", 3)]
    events.store.merge("dev", "main")  # dev's next change: the root log's next version
    main_on_root(lake, events, dev.root, 2, [*merged, (3, "a", 3), (4, "b", 4)])


def test_another_branch_takes_a_new_table_as_it_is(
        lake: DeltaLake, events: Catalog) -> None:
    """Only main takes a new table onto the root log: qa fast-forwards onto dev's log."""
    events.branch("qa").create()
    dev = fresh_on(events, "dev", (1, "a", 1))
    result = events.store.merge("dev", "qa")
    assert result.fast_forward and result.no_ff_reason is None
    assert events.branch("qa").delta("db.fresh").state() == dev
    no_table_at(lake, dev.root)
    qa = events.branch("qa").delta("db.fresh")
    qa.append(data((2, "a", 2)))  # qa's first write: a branch log of its own
    assert qa.state().location not in (dev.location, dev.root)
    no_table_at(lake, dev.root)


@pytest.mark.parametrize("guard", ["checks", "protected"])
def test_a_gated_merge_of_a_new_table_writes_the_root_log_only_when_it_passes(
        lake: DeltaLake, events: Catalog, guard: str) -> None:
    main = events.branch("main")
    dev = fresh_on(events, "dev", (1, "a", -1), (2, "b", 2))
    if guard == "checks":  # (a check must read a table some ref has)
        main.add_check("non-negative", sql=NEGATIVE)
    else:
        main.protect()
    expected: Rows = [(1, "a", -1), (2, "b", 2)]
    if guard == "checks":  # refused: nothing at the root, main stays
        head = main.head.id
        with pytest.raises(ChecksFailed) as caught:
            events.store.merge("dev", "main")
        assert main.head.id == head
        assert events.store.get_content(head, Key.of("db.fresh")) is None
        no_table_at(lake, dev.root)
        preview = caught.value.preview
        assert preview is not None  # the checks read dev's state, on dev's log
        assert rows(events.ref(preview).delta("db.fresh")) == expected
        assert events.ref(preview).delta("db.fresh").state().location == dev.location
        events.branch("dev").delta("db.fresh").delete("v < 0")
        expected = [(2, "b", 2)]
    result = events.store.merge("dev", "main")
    if guard == "checks":
        assert [c["status"] for c in result.checks] == ["passed"]
    assert (result.fast_forward, result.no_ff_reason) == (
        False, no_ff_reason("main") if guard == "protected" else NEW_REASON)
    assert result.new_head == main.head.id
    main_on_root(lake, events, dev.root, 0, expected)


def test_a_publish_failing_after_the_root_write_deletes_only_what_it_wrote(
        lake: DeltaLake, events: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    main = events.branch("main")
    head = main.head.id
    dev = fresh_on(events, "dev", (1, "a", 1))
    dev_files = all_files(dev.location, lake.io)
    commits = events.store._merging.planner.commits  # type: ignore[attr-defined]

    def failing(*args: object, **kwargs: object) -> object:
        """The merge's commit fails after the root log's version 0 was written."""
        assert newest_version(dev.root, lake.io) == 0
        raise OSError("the store's disk is full")

    monkeypatch.setattr(commits, "write", failing)
    with pytest.raises(OSError, match="disk is full"):
        events.store.merge("dev", "main")
    monkeypatch.undo()
    assert main.head.id == head
    no_table_at(lake, dev.root)
    assert all_files(dev.location, lake.io) == dev_files  # dev's log and files stay
    events.store.merge("dev", "main")
    main_on_root(lake, events, dev.root, 0, [(1, "a", 1)])


def test_a_root_log_already_there_is_a_conflict_never_overwritten(
        lake: DeltaLake, events: Catalog) -> None:
    main = events.branch("main")
    head = main.head.id
    dev = fresh_on(events, "dev", (1, "a", 1))
    other = log.read_state(dev.location, dev.version, io=lake.io)
    assert log.write_commit(dev.root, 0, [{"protocol": other.protocol},
                                          {"metaData": other.metadata}],
                            "SOMEONE ELSE", io=lake.io) is not None
    root_log = own_log(lake, dev.root)
    with pytest.raises(ConflictError, match="has a log already"):
        events.store.merge("dev", "main")
    assert main.head.id == head and own_log(lake, dev.root) == root_log
    assert plain_rows(lake, dev.root) == {"duckdb": [], "deltalake": []}
    assert storage.read_bytes(log.commit_uri(dev.root, 0), lake.io) == root_log[
        log.log_name(0)]


def test_gc_after_the_branch_goes_keeps_main_files(
        lake: DeltaLake, events: Catalog) -> None:
    """Main's root log names the files in dev's branch directory: deleting dev and
    collecting long after keeps every file main reads."""
    dev = fresh_on(events, "dev", (1, "a", 1), (2, "b", 2))
    events.store.merge("dev", "main")
    merged = [(1, "a", 1), (2, "b", 2)]
    after = main_on_root(lake, events, dev.root, 0, merged)
    live = {uri for uri, _ in live_files(after, lake.io)}
    assert live and all(uri.startswith(dev.location + "/") for uri in live)
    events.branch("dev").delete()
    report = collect_garbage(
        events.store, roots=[events.warehouse], older_than="1d", keep_commits_since="7d",
        io_properties=lake.io, now=datetime.now(timezone.utc) + timedelta(days=30))
    collected = {f.path for f in report.garbage}
    assert report.errors == [] and not live & collected
    assert live <= all_files(dev.root, lake.io)
    main_on_root(lake, events, dev.root, 0, merged)


def test_a_principal_without_merge_rights_writes_nothing_at_the_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a server with principals: a new table on etl-1, whose merge into main the
    grants refuse, leaves the table root without a log; one with the grant writes root
    version 0."""
    with principals_lake(tmp_path, monkeypatch) as (as_, admin):
        etl = as_("etl")
        fresh = etl.branch("etl-1").delta("db.fresh")
        fresh.create(ID_P_V_ARROW)
        fresh.append(data((1, "a", 1)))
        dev = fresh.state()
        io = FileIOConfig()
        assert dev.location != dev.root and log.latest_version(dev.root, io) is None
        before = {f: storage.read_bytes(f, io) for f in all_files(dev.root, io)}
        head = admin.branch("main").head.id
        with pytest.raises(Forbidden):
            as_("analyst").store.merge("etl-1", "main")
        assert {f: storage.read_bytes(f, io) for f in all_files(dev.root, io)} == before
        assert log.latest_version(dev.root, io) is None
        assert admin.branch("main").head.id == head
        result = etl.store.merge("etl-1", "main")
        assert result.fast_forward is False
        main = admin.branch("main").delta("db.fresh")
        assert (main.state().location, main.state().version) == (dev.root, 0)
        assert rows(main) == [(1, "a", 1)]
