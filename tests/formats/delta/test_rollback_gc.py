"""Rollback and revert of Delta tables (a new log version, history kept), gc across Delta
branch logs (and its fence), and two writers on one branch; on local files and S3."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.formats.delta import storage
from spark_lakeversion.gc import collect_garbage
from tests.formats.delta.helpers import (
    DeltaLake,
    all_files,
    data,
    data_files,
    independent_rows,
    rows,
)

BASE = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]


def test_rollback_writes_a_new_version_with_the_old_file_set(events: Catalog) -> None:
    main = events.branch("main").delta("db.events")
    events.tag("good").create(from_="main")
    main.delete("p = 'a'")
    main.append(data((9, "c", 90)))
    before = main.state()
    commit = main.rollback("good")
    after = main.state()
    assert (after.location, after.version) == (before.location, before.version + 1)
    assert rows(main) == BASE and independent_rows(main) == BASE
    assert commit.properties["lakeversion.rollback.to"] == "good"
    assert main.history(1)[0]["operation"] == "LAKEVERSION ROLLBACK"
    # history is kept: the version before the rollback still reads as it was
    assert sorted(rows(events.ref("main~1").delta("db.events"))) == [(3, "b", 30),
                                                                     (9, "c", 90)]
    main.append(data((5, "a", 50)))  # the log goes on in place
    assert main.state().location == before.location


def test_rollback_on_a_branch_and_revert(events: Catalog) -> None:
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    dev.delete("id = 1")
    bad = dev.append(data((6, "a", 60)))
    assert bad is not None
    result = events.branch("dev").revert(bad)
    assert result.successful
    assert rows(dev) == [(2, "a", 20), (3, "b", 30), (4, "a", 40)]
    assert dev.history(1)[0]["operation"] == "LAKEVERSION ROLLBACK"
    assert independent_rows(dev) == rows(dev)
    events.branch("dev").rollback_table("db.events", to="main")
    assert rows(dev) == BASE
    assert rows(events.branch("main").delta("db.events")) == BASE


def _gc(lake: DeltaLake, days_later: int = 3) -> object:
    """gc as if `days_later` days had passed (3: every file is past the one-day grace
    period; 0: none is)."""
    return collect_garbage(lake.catalog.store, roots=[lake.catalog.warehouse],
                           older_than="1d", keep_commits_since="0s", io_properties=lake.io,
                           now=datetime.now(timezone.utc) + timedelta(days=days_later))


def test_gc_keeps_every_retained_read_and_reclaims_a_dropped_branch(
        lake: DeltaLake, events: Catalog) -> None:
    main = events.branch("main").delta("db.events")
    events.tag("v1").create(from_="main")
    main.delete("id = 4")  # its file is still read at v1
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    dev.append(data((7, "d", 70)))
    dev.delete("id = 1")
    dev_dir = dev.state().location
    refs = {"main": rows(main), "v1": rows(events.ref("v1").delta("db.events")),
            "dev": rows(dev)}
    kept = _gc(lake)
    assert kept.skipped_tables == [] and kept.errors == []  # type: ignore[attr-defined]
    for ref, expected in refs.items():
        handle = events.ref(ref).delta("db.events")
        assert rows(handle) == expected and independent_rows(handle) == expected
    dev_files = {f for f in data_files(main) if f.startswith(dev_dir + "/")}
    assert dev_files  # dev's own files: only dev reaches them
    events.branch("dev").delete(force=True)
    report = _gc(lake)
    deleted = {f.path for f in report.garbage}  # type: ignore[attr-defined]
    assert dev_files <= deleted
    assert not dev_files & data_files(main)
    for ref in ("main", "v1"):
        handle = events.ref(ref).delta("db.events")
        assert rows(handle) == refs[ref] and independent_rows(handle) == refs[ref]


def test_two_writers_on_one_branch_the_first_append_is_rebased_on_the_second(
        lake: DeltaLake, events: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    other = lake.open_again()
    first = events.branch("main").delta("db.events")
    second = other.branch("main").delta("db.events")
    real_commit = events.store.commit

    def interleaved(*args: object, **kwargs: object) -> object:
        """The first writer has written its log version; the second writes all of its
        change before the first's store commit."""
        monkeypatch.setattr(events.store, "commit", real_commit)
        second.append(data((9, "b", 90)))
        return real_commit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(events.store, "commit", interleaved)
    try:
        commit = first.append(data((8, "a", 80)))  # written again on top of the second
        assert commit is not None and commit.properties["lakeversion.rebased"] == "true"
        expected = sorted([*BASE, (8, "a", 80), (9, "b", 90)])
        assert rows(first) == expected and independent_rows(first) == expected
    finally:
        other.close()


def test_an_append_whose_log_version_is_taken_is_rebased_in_place(
        lake: DeltaLake, events: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    from spark_lakeversion.formats.delta import handle as delta_handles

    other = lake.open_again()
    first = events.branch("main").delta("db.events")
    second = other.branch("main").delta("db.events")
    real_append = delta_handles.writes.append

    def late(state: object, rows_in: object, io: object, note: object = None) -> object:
        """The second writer lands entirely between the first's read and its log write."""
        monkeypatch.setattr(delta_handles.writes, "append", real_append)
        second.append(data((9, "b", 90)))
        return real_append(state, rows_in, io, note)  # type: ignore[arg-type]

    monkeypatch.setattr(delta_handles.writes, "append", late)
    try:
        commit = first.append(data((8, "a", 80)))  # lost the log race: written again
        assert commit is not None and commit.properties["lakeversion.rebased"] == "true"
        expected = sorted([*BASE, (8, "a", 80), (9, "b", 90)])
        assert rows(first) == expected and independent_rows(first) == expected
        assert first.state().location == first.state().root  # no branch log was needed
    finally:
        other.close()


def refuse_everything(ctx: object) -> tuple[bool, str]:
    """A Python check (named by dotted path below) that refuses every state."""
    return False, "refused"


@pytest.fixture(autouse=True)
def check_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's stores let checks call this module (`LAKEVERSION_CHECK_MODULES`, read
    when a store is opened: autouse fixtures run before the lake opens it)."""
    monkeypatch.setenv("LAKEVERSION_CHECK_MODULES", __name__)


def test_revert_on_a_protected_branch_is_gated_and_a_refusal_leaves_the_log(
        lake: DeltaLake, events: Catalog) -> None:
    """The revert's new log version is written for its preview on a side log: a refusing
    check leaves every other file byte for byte, and the preview stays readable."""
    from spark_lakeversion.errors import ChecksFailed

    events.branch("dev").create()
    events.branch("dev").delta("db.events").append(data((5, "a", 50)))
    main = events.branch("main")
    main.protect()
    merge = events.ref("dev").merge_into("main").new_head
    assert merge is not None and len(events.store.get_commit(merge).parents) == 2
    main.add_check("nothing", python=f"{__name__}:refuse_everything")

    def files() -> dict[str, bytes | None]:
        return {f: storage.read_bytes(f, lake.io) for f in all_files(events.warehouse, lake.io)
                if "/_branches/main-" not in f}

    before = files()
    with pytest.raises(ChecksFailed, match="refused") as caught:
        main.revert(merge)
    assert main.head.id == merge and files() == before
    assert caught.value.preview is not None
    assert sorted(rows(events.ref(caught.value.preview).delta("db.events"))) == sorted(BASE)
    main.remove_check("nothing")
    result = main.revert(merge)
    assert result.checks == () and main.head.id == result.new_head
    assert sorted(rows(main.delta("db.events"))) == sorted(BASE)
    assert main.delta("db.events").history(1)[0]["operation"] == "LAKEVERSION ROLLBACK"


def test_gc_keeps_a_parent_file_only_a_branch_log_names(lake: DeltaLake,
                                                         events: Catalog) -> None:
    """dev's log names main's p=b file by ``../../p=b/...``; main drops it and no retained
    commit of main holds it any more: gc keeps it for dev alone."""
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    main = events.branch("main").delta("db.events")
    dev.append(data((5, "c", 50)))
    b_file = {f for f in data_files(main) if "/p=b/" in f}
    assert len(b_file) == 1
    main.delete("p = 'b'")
    report = _gc(lake)
    assert report.errors == [] and report.skipped_tables == []  # type: ignore[attr-defined]
    assert not b_file & {f.path for f in report.garbage}  # type: ignore[attr-defined]
    assert b_file <= data_files(main)
    assert rows(dev) == sorted([*BASE, (5, "c", 50)]) == independent_rows(dev)
    assert rows(main) == [r for r in BASE if r[1] != "b"]


def test_a_delta_write_whose_files_vanished_after_gc_is_fenced(
        lake: DeltaLake, events: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a gc run (its cutoff recorded), every Delta write is checked by gc's fence: a
    branch's first write passes (its log is new, the parent's files are not added), and a
    write whose new data file is gone before the store commit is refused, leaving the
    branch and its log as they were."""
    from spark_lakeversion.formats.delta import handle as delta_handles
    from spark_lakeversion.gc.fence import FilesMayBeCollected

    _gc(lake, days_later=0)
    assert events.store.gc_state().cutoff is not None
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    dev.append(data((5, "c", 50)))  # the fork and its write pass the fence
    state, head = dev.state(), events.branch("dev").head.id
    real_append = delta_handles.writes.append

    def vanishing(state: object, rows_in: object, io: object, note: object = None) -> object:
        outcome = real_append(state, rows_in, io, note)  # type: ignore[arg-type]
        storage.remove(next(f for f in outcome.created if f.endswith(".parquet")),
                       lake.io)
        return outcome

    monkeypatch.setattr(delta_handles.writes, "append", vanishing)
    with pytest.raises(FilesMayBeCollected, match="does not exist"):
        dev.append(data((6, "c", 60)))
    assert events.branch("dev").head.id == head and dev.state() == state
    assert storage.read_bytes(f"{state.location}/_delta_log/{state.version + 1:020d}.json",
                              lake.io) is None  # the refused version's log file is gone
    assert rows(dev) == sorted([*BASE, (5, "c", 50)]) == independent_rows(dev)
