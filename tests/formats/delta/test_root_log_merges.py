"""Main keeps owning the table's root log across every merge into it: a merge that gives
main a state of a Delta table living on another log (a branch's log, a gate's preview)
writes the net change as ONE next version of the root log, so plain readers of the table
root (DuckDB's `delta_scan`, deltalake's `DeltaTable(root)`) read main's state, and main's
next write lands in place. A merge that would have fast-forwarded main onto a branch log
is a merge commit that says why. On local files and on S3 (moto)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ChecksFailed, Forbidden
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.model import MergeAction
from spark_lakeversion.versioning.protection import no_ff_reason
from tests.formats.delta.helpers import (
    BASE,
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

REASON = ("db.events is a Delta table whose own log 'main' writes: the change is written "
          "there as a new version (no fast-forward)")
POSITIVE = "SELECT id, v FROM db.events WHERE v < 0"


def dev_appends(events: Catalog, *rows_: tuple[int, str, int]) -> Rows:
    """dev branches from main and appends `rows_` (its first write: a branch log). The
    rows main holds once dev is merged."""
    events.branch("dev").create()
    events.branch("dev").delta("db.events").append(data(*rows_))
    return sorted([*BASE, *rows_])


def on_root_log(lake: DeltaLake, events: Catalog, before: DeltaState, expected: Rows
                ) -> DeltaState:
    """Main's state is the next version of the root log (the newest), and every reader
    (plain readers of the root, our handle, an independent reader) reads `expected`."""
    handle = events.branch("main").delta("db.events")
    after = handle.state()
    assert (after.location, after.version, after.writer) == (
        before.root, before.version + 1, "main")
    assert newest_version(before.root, lake.io) == after.version
    assert plain_rows(lake, before.root) == {"duckdb": expected, "deltalake": expected}
    assert rows(handle) == expected == independent_rows(handle)
    return after


def writes_in_place(lake: DeltaLake, events: Catalog, expected: Rows) -> None:
    """Main's next write is the next version of the root log."""
    handle = events.branch("main").delta("db.events")
    before = handle.state()
    handle.append(data((70, "c", 700)))
    assert (handle.state().location, handle.state().version) == (
        before.root, before.version + 1)
    now = sorted([*expected, (70, "c", 700)])
    assert plain_rows(lake, before.root) == {"duckdb": now, "deltalake": now}


def test_a_branch_write_merged_into_main_lands_on_the_root_log(
        lake: DeltaLake, events: Catalog) -> None:
    """The basic workflow (branch, write, merge): was a fast-forward onto dev's log."""
    main = events.branch("main")
    before = main.delta("db.events").state()
    merged = dev_appends(events, (5, "b", 50))
    dev_state = events.branch("dev").delta("db.events").state()
    dry = events.store.merge("dev", "main", dry_run=True)
    assert (dry.fast_forward, dry.no_ff_reason, dry.new_head) == (False, REASON, None)
    assert newest_version(before.root, lake.io) == before.version  # a dry run writes none
    result = events.store.merge("dev", "main")
    assert (result.fast_forward, result.no_ff_reason) == (False, REASON)
    assert result.new_head == main.head.id
    assert [(str(d.key), d.action) for d in result.details] == [
        ("db.events", MergeAction.APPLIED)]
    commit = events.store.get_commit(main.head.id)
    assert commit.parents == (result.target_head_before, events.branch("dev").head.id)
    after = on_root_log(lake, events, before, merged)
    info = log.commit_info(after.version, after.location, lake.io)
    assert info["operation"] == log.OP_MERGE
    assert info["operationParameters"] == {"sourceLocation": dev_state.location,
                                           "sourceVersion": str(dev_state.version)}
    actions = log.commit_actions(after.location, after.version, lake.io)
    assert [next(k for k in a if k != "commitInfo") for a in actions
            if "commitInfo" not in a] == ["add"]  # the net change: dev's one new file
    assert events.branch("dev").delta("db.events").state() == dev_state  # dev keeps its log
    writes_in_place(lake, events, merged)
    events.branch("dev").delta("db.events").append(data((6, "a", 60)))
    dev_now = events.branch("dev").delta("db.events").state()
    assert (dev_now.location, dev_now.version) == (dev_state.location, dev_state.version + 1)


def test_a_merge_where_only_the_source_changed_the_table_lands_on_the_root_log(
        lake: DeltaLake, events: Catalog) -> None:
    """Main moved on another table meanwhile (no fast-forward possible): the version
    layer took the source's state of db.events as it was."""
    main = events.branch("main")
    before = main.delta("db.events").state()
    merged = dev_appends(events, (5, "b", 50))
    events.branch("dev").delta("db.events").delete("id = 1")  # removes a root file
    merged = [r for r in merged if r[0] != 1]
    other = main.delta("db.other")
    other.create(ID_P_V_ARROW)
    other.append(data((9, "z", 90)))
    other_state = other.state()
    result = events.store.merge("dev", "main")
    assert (result.fast_forward, result.no_ff_reason) == (False, None)
    assert {str(d.key): d.action for d in result.details} == {
        "db.events": MergeAction.APPLIED}
    after = on_root_log(lake, events, before, merged)
    kinds = sorted(next(k for k in a if k != "commitInfo") for a in
                   log.commit_actions(after.location, after.version, lake.io)
                   if "commitInfo" not in a)
    assert kinds == ["add", "add", "remove"]  # dev's file, id 2 rewritten, its old file
    assert main.delta("db.other").state() == other_state
    assert rows(main.delta("db.other")) == [(9, "z", 90)]
    writes_in_place(lake, events, merged)


def test_a_branch_forked_from_a_branch_merges_onto_the_root_log(
        lake: DeltaLake, events: Catalog) -> None:
    """feature branches from dev (its log's version 0 names dev's log), writes, and
    merges into main: dev's and feature's changes are one version of the root log."""
    main = events.branch("main")
    before = main.delta("db.events").state()
    dev_appends(events, (5, "b", 50))
    events.branch("feature").create(from_="dev")
    feature = events.branch("feature").delta("db.events")
    feature.append(data((6, "c", 60)))
    feature.delete("id = 2")
    merged = sorted([(1, "a", 10), (3, "b", 30), (4, "a", 40), (5, "b", 50),
                     (6, "c", 60)])
    result = events.store.merge("feature", "main")
    assert (result.fast_forward, result.no_ff_reason) == (False, REASON)
    after = on_root_log(lake, events, before, merged)
    again = events.store.merge("dev", "main")  # dev's change is in main already
    assert again.new_head == result.new_head and main.delta("db.events").state() == after
    writes_in_place(lake, events, merged)


@pytest.mark.parametrize("shape", ["fast-forward", "other-table-moved"])
@pytest.mark.parametrize("guard", ["checks", "protected"])
def test_a_gated_merge_writes_the_root_log_only_when_it_passes(
        lake: DeltaLake, events: Catalog, shape: str, guard: str) -> None:
    main = events.branch("main")
    if guard == "checks":
        main.add_check("positive", sql=POSITIVE)
    else:
        main.protect()
    before = main.delta("db.events").state()
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    dev.append(data((5, "b", -50)))
    if shape == "other-table-moved":
        events.branch("side").create()
        events.branch("side").delta("db.other").create(ID_P_V_ARROW)
        assert events.store.merge("side", "main").new_head == main.head.id
    root_log, head = own_log(lake, before.root), main.head.id
    published = sorted(BASE)
    if guard == "checks":  # refused: nothing on the root log, main stays
        with pytest.raises(ChecksFailed, match="stays readable") as caught:
            events.store.merge("dev", "main")
        assert main.head.id == head and own_log(lake, before.root) == root_log
        assert plain_rows(lake, before.root) == {"duckdb": published,
                                                 "deltalake": published}
        preview = caught.value.preview
        assert preview is not None
        assert rows(events.ref(preview).delta("db.events")) == sorted([*BASE, (5, "b", -50)])
        dev.delete("id = 5")
    dev.append(data((6, "b", 60)))
    merged = sorted([*BASE, (6, "b", 60)]) if guard == "checks" \
        else sorted([*BASE, (5, "b", -50), (6, "b", 60)])
    result = events.store.merge("dev", "main")
    if guard == "checks":
        assert [c["status"] for c in result.checks] == ["passed"]
    expected_reason = no_ff_reason("main") if guard == "protected" \
        else REASON if shape == "fast-forward" else None
    assert (result.fast_forward, result.no_ff_reason) == (False, expected_reason)
    assert result.new_head == main.head.id
    on_root_log(lake, events, before, merged)
    if guard == "protected":
        main.unprotect()
    writes_in_place(lake, events, merged)


def test_an_ungated_publish_failing_after_the_replay_deletes_only_its_version(
        lake: DeltaLake, events: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    main = events.branch("main")
    before, head = main.delta("db.events").state(), main.head.id
    merged = dev_appends(events, (5, "b", 50))
    root_log = own_log(lake, before.root)
    commits = events.store._merging.planner.commits  # type: ignore[attr-defined]

    def failing(*args: object, **kwargs: object) -> object:
        """The merge's commit fails after the replay."""
        assert newest_version(before.root, lake.io) == before.version + 1  # replayed
        raise OSError("the store's disk is full")

    monkeypatch.setattr(commits, "write", failing)
    with pytest.raises(OSError, match="disk is full"):
        events.store.merge("dev", "main")
    monkeypatch.undo()
    assert main.head.id == head and own_log(lake, before.root) == root_log
    assert plain_rows(lake, before.root) == {"duckdb": BASE, "deltalake": BASE}
    events.store.merge("dev", "main")  # main still owns its log
    on_root_log(lake, events, before, merged)


def test_a_table_new_on_the_branch_reaches_the_root_log_and_other_branches_fast_forward(
        lake: DeltaLake, events: Catalog) -> None:
    """Only main takes a state anew: a merge into a branch that owns no root log (qa)
    fast-forwards, a table new to it included (it keeps reading dev's log); main takes a
    table new to it, born on dev's branch log, as version 0 of the table's root log (was a
    fast-forward onto dev's log before tables new on a branch started on a branch log)."""
    events.branch("dev").create()
    events.branch("qa").create()
    dev = events.branch("dev")
    dev.delta("db.fresh").create(ID_P_V_ARROW)
    dev.delta("db.events").append(data((5, "b", 50)))
    result = events.store.merge("dev", "qa")  # qa reads main's log, which it does not own
    assert result.fast_forward and result.no_ff_reason is None
    for table in ("db.events", "db.fresh"):
        assert events.branch("qa").delta(table).state() == dev.delta(table).state()
    result = events.store.merge("dev", "main")
    assert (result.fast_forward, result.no_ff_reason) == (False, REASON)
    fresh = events.branch("main").delta("db.fresh").state()
    assert (fresh.location, fresh.version, fresh.writer) == (fresh.root, 0, "main")
    assert plain_rows(lake, fresh.root) == {"duckdb": [], "deltalake": []}


def test_gc_keeps_the_branch_files_main_names_after_the_branch_goes(
        lake: DeltaLake, events: Catalog) -> None:
    """Main's root log names dev's file in dev's branch directory: deleting dev and
    collecting long after keeps it (and every other live file)."""
    main = events.branch("main")
    before = main.delta("db.events").state()
    merged = dev_appends(events, (5, "b", 50))
    dev_dir = events.branch("dev").delta("db.events").state().location
    events.store.merge("dev", "main")
    after = on_root_log(lake, events, before, merged)
    live = {uri for uri, _ in live_files(after, lake.io)}
    assert any(uri.startswith(dev_dir + "/") for uri in live)
    events.branch("dev").delete()
    report = collect_garbage(
        events.store, roots=[events.warehouse], older_than="1d", keep_commits_since="7d",
        io_properties=lake.io, now=datetime.now(timezone.utc) + timedelta(days=30))
    collected = {f.path for f in report.garbage}
    assert report.errors == [] and not live & collected
    assert live <= all_files(before.root, lake.io)
    assert plain_rows(lake, before.root) == {"duckdb": merged, "deltalake": merged}
    assert rows(main.delta("db.events")) == merged == independent_rows(
        main.delta("db.events"))


def test_a_principal_without_merge_rights_writes_nothing_on_the_root_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a server with principals: the one-sided merge refused by the grants writes
    nothing anywhere; one with the grant lands on the root log."""
    with principals_lake(tmp_path, monkeypatch) as (as_, admin):
        main = admin.branch("main").delta("db.events")
        root, head = main.state().root, admin.branch("main").head.id
        io = FileIOConfig()
        before = {f: storage.read_bytes(f, io) for f in all_files(root, io)}
        analyst = as_("analyst")
        with pytest.raises(Forbidden):
            analyst.store.merge("etl-1", "main")
        assert {f: storage.read_bytes(f, io) for f in all_files(root, io)} == before
        assert admin.branch("main").head.id == head
        etl = as_("etl")
        result = etl.store.merge("etl-1", "main")
        assert (result.fast_forward, result.no_ff_reason) == (False, REASON)
        assert (main.state().location, main.state().version) == (root, 2)
        assert newest_version(root) == 2
        assert rows(main) == sorted([*BASE, (5, "b", 50)])


def test_a_branch_whose_net_change_is_nothing_leaves_the_root_log_as_it_was(
        lake: DeltaLake, events: Catalog) -> None:
    """dev appends a file and deletes its rows again: its live files are main's, so main
    keeps its own state and the root log gets no version."""
    main = events.branch("main")
    before = main.delta("db.events").state()
    dev_appends(events, (5, "c", 50))
    events.branch("dev").delta("db.events").delete("id = 5")
    root_log = own_log(lake, before.root)
    result = events.store.merge("dev", "main")
    assert (result.fast_forward, result.no_ff_reason) == (False, REASON)
    assert result.new_head == main.head.id
    assert main.delta("db.events").state() == before
    assert own_log(lake, before.root) == root_log
    assert rows(main.delta("db.events")) == BASE
    writes_in_place(lake, events, BASE)
