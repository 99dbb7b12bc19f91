"""A gated Delta merge or revert writes its preview on a side log (`_branches/`), never on
the table's own log: plain readers of the table root (DuckDB's `delta_scan`, deltalake's
`DeltaTable(root)`) read main's published state whatever the checks decide. Only a
passing gate writes the same change as the next version of the own log, which the
published commit points at. On local files and on S3 (moto)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ChecksFailed, Forbidden
from spark_lakeversion.fileio import FileIOConfig
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.model import Key
from tests.formats.delta.helpers import (
    BASE,
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

POSITIVE = "SELECT id, v FROM db.events WHERE v < 0"
#: what the concurrent-write check does on its first run (set by the test)
DURING_CHECK: list[Callable[[], None]] = []


@pytest.fixture(autouse=True)
def check_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's stores let checks call this module (read when a store is opened:
    autouse fixtures run before the lake opens it)."""
    monkeypatch.setenv("LAKEVERSION_CHECK_MODULES", __name__)


def write_to_main_once(ctx: object) -> tuple[bool, str]:
    """A Python check that, on its first run only, lets another writer land on main."""
    while DURING_CHECK:
        DURING_CHECK.pop()()
    return True, "ok"


def outside_branches(lake: DeltaLake, root: str) -> dict[str, bytes | None]:
    """Every file under the table root but its branch logs' directories."""
    return {f: storage.read_bytes(f, lake.io) for f in all_files(root, lake.io)
            if not f.startswith(f"{root}/_branches/")}


def state_at(catalog: Catalog, ref: str) -> DeltaState:
    content = catalog.store.get_content(ref, "db.events")
    assert content is not None
    return DeltaState.of(content)


def diverged(catalog: Catalog, bad: bool) -> Rows:
    """dev appends (a negative v when `bad`), main appends after dev branched: merging dev
    is a Delta content merge. The rows the merge brings."""
    catalog.branch("dev").create()
    catalog.branch("dev").delta("db.events").append(
        data((5, "b", -50 if bad else 50)))
    catalog.branch("main").delta("db.events").append(data((6, "b", 60)))
    return sorted([*BASE, (5, "b", -50 if bad else 50), (6, "b", 60)])


@pytest.mark.parametrize("protected", [False, True], ids=["checks", "protected"])
def test_a_refused_merge_leaves_the_root_log_and_main_keeps_owning_it(
        lake: DeltaLake, events: Catalog, protected: bool) -> None:
    main = events.branch("main")
    main.add_check("positive", sql=POSITIVE)
    merged = diverged(events, bad=True)
    if protected:
        main.protect()
    published = sorted([*BASE, (6, "b", 60)])
    handle = main.delta("db.events")
    root, before = handle.state().root, handle.state()
    assert before.location == root
    log_before, head = own_log(lake, root), main.head.id
    with pytest.raises(ChecksFailed, match="stays readable") as caught:
        events.store.merge("dev", "main")
    assert main.head.id == head
    assert own_log(lake, root) == log_before
    assert newest_version(root, lake.io) == before.version
    assert plain_rows(lake, root) == {"duckdb": published, "deltalake": published}
    preview = caught.value.preview
    assert preview is not None
    side = state_at(events, preview)
    assert side.location.startswith(f"{root}/_branches/main-") and side.writer == "main"
    assert rows(events.ref(preview).delta("db.events")) == merged
    assert independent_rows(side, lake.io) == merged
    if protected:
        main.unprotect()
    handle.append(data((7, "a", 70)))  # main still owns its log: written in place
    assert (handle.state().location, handle.state().version) == (root, before.version + 1)
    assert plain_rows(lake, root)["duckdb"] == sorted([*published, (7, "a", 70)])


@pytest.mark.parametrize("protected", [False, True], ids=["checks", "protected"])
def test_a_passing_merge_is_written_on_the_root_log_as_its_checks_saw_it(
        lake: DeltaLake, events: Catalog, protected: bool) -> None:
    main = events.branch("main")
    main.add_check("positive", sql=POSITIVE)
    merged = diverged(events, bad=False)
    if protected:
        main.protect()
    handle = main.delta("db.events")
    before = handle.state()
    result = events.store.merge("dev", "main")
    assert {c["name"]: c["status"] for c in result.checks} == {"positive": "passed"}
    after = handle.state()
    assert (after.location, after.version, after.writer) == (
        before.root, before.version + 1, "main")
    assert newest_version(before.root, lake.io) == after.version
    assert log.commit_info(after.version, after.location, lake.io)["operation"] == \
        log.OP_MERGE
    assert plain_rows(lake, before.root) == {"duckdb": merged, "deltalake": merged}
    assert rows(handle) == merged == independent_rows(handle)
    # the published commit is the preview but for where that table state is stored
    assert result.preview is not None and result.new_head is not None
    published = events.store.get_commit(result.new_head)
    checked = events.store.get_commit(result.preview)
    assert published.properties["lakeversion.checks.preview"] == result.preview
    assert published.parents == checked.parents
    side = state_at(events, result.preview)
    assert side.location.startswith(f"{before.root}/_branches/main-")
    assert (side.table_id, side.root, side.writer) == (after.table_id, after.root, "main")
    judged = log.read_state(side.location, side.version, io=lake.io)
    written = log.read_state(after.location, after.version, io=lake.io)
    assert set(written.files) == set(judged.files)
    assert (written.metadata, written.protocol) == (judged.metadata, judged.protocol)
    assert rows(events.ref(result.preview).delta("db.events")) == merged
    differ = events.store.diff(result.preview, result.new_head)
    assert [(e.key, e.from_content, e.to_content) for e in differ] == [
        (Key.of("db.events"), side.content(), after.content())]
    if protected:
        main.unprotect()
    handle.append(data((8, "a", 80)))  # main owns its log: the next write goes on in place
    assert (handle.state().location, handle.state().version) == (
        before.root, after.version + 1)


def test_a_gated_revert_writes_the_root_log_only_once_it_passes(
        lake: DeltaLake, events: Catalog) -> None:
    main = events.branch("main")
    merged = diverged(events, bad=False)
    main.protect()
    merge = events.store.merge("dev", "main").new_head  # published on the root log
    handle = main.delta("db.events")
    root = handle.state().root
    assert merge is not None and handle.state().location == root
    main.add_check("nothing", python=f"{__name__}:refuse")
    untouched, version = outside_branches(lake, root), handle.state().version
    with pytest.raises(ChecksFailed, match="refused") as caught:
        main.revert(merge)
    assert main.head.id == merge and outside_branches(lake, root) == untouched
    assert plain_rows(lake, root) == {"duckdb": merged, "deltalake": merged}
    preview = caught.value.preview
    assert preview is not None  # the refused state stays readable, on its side log
    assert state_at(events, preview).location.startswith(f"{root}/_branches/main-")
    reverted = sorted([*BASE, (6, "b", 60)])
    assert rows(events.ref(preview).delta("db.events")) == reverted
    main.remove_check("nothing")
    main.add_check("positive", sql=POSITIVE)
    result = main.revert(merge)
    assert [c["status"] for c in result.checks] == ["passed"]
    after = handle.state()
    assert (after.location, after.version) == (root, version + 1)
    assert newest_version(root, lake.io) == version + 1
    assert log.commit_info(after.version, root, lake.io)["operation"] == log.OP_ROLLBACK
    assert plain_rows(lake, root) == {"duckdb": reverted, "deltalake": reverted}
    assert rows(handle) == reverted == independent_rows(handle)


def test_main_moving_during_the_checks_leaves_no_orphan_version(
        lake: DeltaLake, events: Catalog) -> None:
    main = events.branch("main")
    main.add_check("writer", python=f"{__name__}:write_to_main_once")
    merged = diverged(events, bad=False)
    handle = main.delta("db.events")
    before = handle.state()
    other = lake.open_again()
    try:
        DURING_CHECK.append(
            lambda: other.branch("main").delta("db.events").append(data((9, "a", 90))))
        result = events.store.merge("dev", "main")
    finally:
        DURING_CHECK.clear()
        other.close()
    runs = events.store.check_runs("main", 10)  # newest first
    assert [r.report.status.value for r in runs] == ["passed", "passed"]
    assert runs[0].preview == result.preview != runs[1].preview  # the target moved: again
    after = handle.state()
    assert (after.location, after.version) == (before.root, before.version + 2)
    names = sorted(n for n in own_log(lake, before.root) if n.endswith(".json"))
    assert names == [log.log_name(v) for v in range(after.version + 1)]
    operations = [log.commit_info(v, before.root, lake.io)["operation"]
                  for v in (before.version + 1, after.version)]
    assert operations == ["WRITE", log.OP_MERGE]
    expected = sorted([*merged, (9, "a", 90)])
    assert plain_rows(lake, before.root) == {"duckdb": expected, "deltalake": expected}
    assert result.new_head == main.head.id


def test_gc_keeps_a_retained_previews_side_log_and_collects_it_after(
        lake: DeltaLake, events: Catalog) -> None:
    main = events.branch("main")
    main.add_check("positive", sql=POSITIVE)
    merged = diverged(events, bad=True)
    with pytest.raises(ChecksFailed) as caught:
        events.store.merge("dev", "main")
    preview = caught.value.preview
    assert preview is not None
    side = state_at(events, preview)
    side_files = {f for f in all_files(side.root, lake.io)
                  if f.startswith(side.location + "/")}
    assert {f.rsplit("/", 1)[1] for f in side_files} == {
        log.log_name(0), log.log_name(1)}

    def gc(days_later: int) -> set[str]:
        report = collect_garbage(
            events.store, roots=[events.warehouse], older_than="1d",
            keep_commits_since="7d", io_properties=lake.io,
            now=datetime.now(timezone.utc) + timedelta(days=days_later))
        assert report.errors == [] and report.skipped_tables == []
        return {f.path for f in report.garbage}

    assert not gc(3) & side_files  # the preview is retained: its log is kept
    assert side_files <= all_files(side.root, lake.io)
    assert rows(events.ref(preview).delta("db.events")) == merged
    collected = gc(9)  # older than the retained history: its side log goes
    assert side_files <= collected
    assert not side_files & all_files(side.root, lake.io)
    published = sorted([*BASE, (6, "b", 60)])
    assert rows(main.delta("db.events")) == published
    assert plain_rows(lake, side.root) == {"duckdb": published, "deltalake": published}


def test_an_ungated_merge_still_writes_in_place(lake: DeltaLake, events: Catalog) -> None:
    merged = diverged(events, bad=False)
    handle = events.branch("main").delta("db.events")
    before = handle.state()
    events.store.merge("dev", "main")
    after = handle.state()
    assert (after.location, after.version) == (before.root, before.version + 1)
    assert not any(f.startswith(f"{before.root}/_branches/main-")
                   for f in all_files(before.root, lake.io))
    assert plain_rows(lake, before.root) == {"duckdb": merged, "deltalake": merged}


def refuse(ctx: object) -> tuple[bool, str]:
    """A Python check that refuses every state."""
    return False, "refused"


def test_a_principal_without_merge_rights_writes_no_preview(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over a server with principals: a gated merge or revert refused by the grants is
    refused before any preview is written, anywhere; one with the grant is published on
    the root log."""
    with principals_lake(tmp_path, monkeypatch) as (as_, admin):
        main = admin.branch("main").delta("db.events")
        main.append(data((6, "b", 60)))
        admin.branch("main").add_check("positive", sql=POSITIVE)
        root, head = main.state().root, admin.branch("main").head.id
        io = FileIOConfig()
        before = {f: storage.read_bytes(f, io) for f in all_files(root, io)}
        analyst = as_("analyst")
        with pytest.raises(Forbidden):
            analyst.store.merge("etl-1", "main")
        with pytest.raises(Forbidden):
            analyst.store.revert(head, "main")
        assert {f: storage.read_bytes(f, io) for f in all_files(root, io)} == before
        assert admin.branch("main").head.id == head
        etl = as_("etl")
        result = etl.store.merge("etl-1", "main")
        assert [c["status"] for c in result.checks] == ["passed"]
        assert (main.state().location, main.state().version) == (root, 3)
        assert newest_version(root) == 3


def test_a_gated_row_merge_writes_its_files_once_and_gc_keeps_them_after_the_preview(
        lake: DeltaLake, events: Catalog) -> None:
    """Both sides update rows of one file: the row merge's new files are written in the
    preview's side directory; the published root log names them there, so they outlive
    the preview's side log in gc."""
    main = events.branch("main")
    main.add_check("positive", sql=POSITIVE)
    events.branch("dev").create()
    events.branch("dev").delta("db.events").update({"v": "21"}, "id = 2")
    handle = main.delta("db.events")
    handle.update({"v": "11"}, "id = 1")
    before = handle.state()
    result = events.store.merge("dev", "main")
    assert result.details[0].statistics["row_merge"]["file_conflicts"]
    merged = sorted([(1, "a", 11), (2, "a", 21), (3, "b", 30), (4, "a", 40)])
    after = handle.state()
    assert (after.location, after.version) == (before.root, before.version + 1)
    assert plain_rows(lake, before.root) == {"duckdb": merged, "deltalake": merged}
    assert result.preview is not None
    side = state_at(events, result.preview)
    written = {uri for uri, _ in live_files(after, lake.io)
               if uri.startswith(side.location + "/")}
    assert written  # the rows the merge wrote, in the preview's directory
    report = collect_garbage(events.store, roots=[events.warehouse], older_than="1d",
                             keep_commits_since="7d", io_properties=lake.io,
                             now=datetime.now(timezone.utc) + timedelta(days=9))
    collected = {f.path for f in report.garbage}
    assert report.errors == [] and not written & collected
    assert f"{side.location}/_delta_log/{log.log_name(1)}" in collected
    assert plain_rows(lake, before.root) == {"duckdb": merged, "deltalake": merged}
    assert rows(handle) == merged == independent_rows(handle)


def test_a_publish_failing_after_the_replay_deletes_only_the_version_it_wrote(
        lake: DeltaLake, events: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    main = events.branch("main")
    main.add_check("positive", sql=POSITIVE)
    merged = diverged(events, bad=False)
    handle = main.delta("db.events")
    before, head = handle.state(), main.head.id
    root_log = own_log(lake, before.root)
    gates = events.store._gates  # type: ignore[attr-defined]
    real_write = gates.commits.write

    def failing(tx: object, branch: str | None, *args: object, **kwargs: object) -> object:
        """The publish's commit fails after the replay (the preview's lands)."""
        if branch is None:
            return real_write(tx, branch, *args, **kwargs)
        assert newest_version(before.root, lake.io) == before.version + 1  # replayed
        raise OSError("the store's disk is full")

    monkeypatch.setattr(gates.commits, "write", failing)
    with pytest.raises(OSError, match="disk is full"):
        events.store.merge("dev", "main")
    monkeypatch.undo()
    assert main.head.id == head and own_log(lake, before.root) == root_log
    assert plain_rows(lake, before.root)["deltalake"] == sorted([*BASE, (6, "b", 60)])
    result = events.store.merge("dev", "main")  # main still owns its log
    assert (handle.state().location, handle.state().version) == (
        before.root, before.version + 1) and result.new_head == main.head.id
    assert plain_rows(lake, before.root) == {"duckdb": merged, "deltalake": merged}


def test_a_gated_dry_run_checks_a_side_log_and_publishes_nothing(
        lake: DeltaLake, events: Catalog) -> None:
    main = events.branch("main")
    main.add_check("positive", sql=POSITIVE)
    merged = diverged(events, bad=False)
    root = main.delta("db.events").state().root
    root_log, head = own_log(lake, root), main.head.id
    result = events.store.merge("dev", "main", dry_run=True)
    assert [c["status"] for c in result.checks] == ["passed"] and result.new_head is None
    assert main.head.id == head and own_log(lake, root) == root_log
    assert result.preview is not None
    assert state_at(events, result.preview).location.startswith(f"{root}/_branches/main-")
    assert rows(events.ref(result.preview).delta("db.events")) == merged
