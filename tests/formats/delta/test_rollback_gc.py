"""Rollback and revert of Delta tables (a new log version, history kept), gc across Delta
branch logs, and two writers on one branch."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.errors import ConflictError
from tests.formats.delta.helpers import data, data_files, independent_rows, rows

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
    assert rows(main) == BASE and independent_rows(after) == BASE
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
    assert independent_rows(dev.state()) == rows(dev)
    events.branch("dev").rollback_table("db.events", to="main")
    assert rows(dev) == BASE
    assert rows(events.branch("main").delta("db.events")) == BASE


def _age(root: str, seconds: float) -> None:
    """Make every file under `root` look `seconds` old (gc's grace period)."""
    then = time.time() - seconds
    for path in Path(unquote(root[7:])).rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def test_gc_keeps_every_retained_read_and_reclaims_a_dropped_branch(events: Catalog,
                                                                     tmp_path: Path) -> None:
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
    root = main.state().root
    _age(root, 3 * 86400)
    roots = [str(tmp_path / "warehouse")]
    kept = events.collect_garbage(roots=roots, older_than="1d", keep_commits_since="0s")
    assert kept.skipped_tables == []
    for ref, expected in refs.items():
        handle = events.ref(ref).delta("db.events")
        assert rows(handle) == expected and independent_rows(handle.state()) == expected
    dev_files = {f for f in data_files(root) if f.startswith(unquote(dev_dir[7:]))}
    assert dev_files  # dev's own files: only dev reaches them
    events.branch("dev").delete(force=True)
    _age(root, 3 * 86400)
    report = events.collect_garbage(roots=roots, older_than="1d", keep_commits_since="0s")
    deleted = {unquote(f.path[7:]) for f in report.garbage}
    assert dev_files <= deleted
    assert not any(Path(f).exists() for f in dev_files)
    for ref in ("main", "v1"):
        handle = events.ref(ref).delta("db.events")
        assert rows(handle) == refs[ref] and independent_rows(handle.state()) == refs[ref]


def test_two_writers_on_one_branch_the_second_conflicts_and_its_retry_lands(
        events: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spark_lakeversion.api import connect

    other = connect(f"sqlite:///{tmp_path / 'store.db'}", warehouse=events.warehouse)
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
        with pytest.raises(ConflictError):
            first.append(data((8, "a", 80)))
        assert rows(first) == [*BASE, (9, "b", 90)]  # the second writer's change only
        first.append(data((8, "a", 80)))  # the retry lands on top of it
        expected = sorted([*BASE, (8, "a", 80), (9, "b", 90)])
        assert rows(first) == expected and independent_rows(first.state()) == expected
    finally:
        other.close()


def test_a_writer_whose_log_version_is_taken_gets_a_conflict_and_its_retry_lands(
        events: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spark_lakeversion.api import connect
    from spark_lakeversion.formats.delta import handle as delta_handles

    other = connect(f"sqlite:///{tmp_path / 'store.db'}", warehouse=events.warehouse)
    first = events.branch("main").delta("db.events")
    second = other.branch("main").delta("db.events")
    real_append = delta_handles.writes.append

    def late(state: object, rows_in: object, io: object) -> object:
        """The second writer lands entirely between the first's read and its log write."""
        monkeypatch.setattr(delta_handles.writes, "append", real_append)
        second.append(data((9, "b", 90)))
        return real_append(state, rows_in, io)  # type: ignore[arg-type]

    monkeypatch.setattr(delta_handles.writes, "append", late)
    try:
        with pytest.raises(ConflictError, match="moved past version"):
            first.append(data((8, "a", 80)))
        first.append(data((8, "a", 80)))
        expected = sorted([*BASE, (8, "a", 80), (9, "b", 90)])
        assert rows(first) == expected and independent_rows(first.state()) == expected
        assert first.state().location == first.state().root  # no branch log was needed
    finally:
        other.close()


def refuse_everything(ctx: object) -> tuple[bool, str]:
    """A Python check (named by dotted path below) that refuses every state."""
    return False, "refused"


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    """This module's catalog lets checks call this module (`LAKEVERSION_CHECK_MODULES`,
    read when the store is opened)."""
    monkeypatch.setenv("LAKEVERSION_CHECK_MODULES", __name__)
    with connect(f"sqlite:///{tmp_path / 'store.db'}", author="tester",
                 warehouse=str(tmp_path / "warehouse")) as cat:
        yield cat


def test_revert_on_a_protected_branch_is_gated_and_a_refusal_leaves_the_log(
        events: Catalog, tmp_path: Path) -> None:
    """The revert's new log version is written for its preview; the refusing check undoes
    it, byte for byte."""
    from spark_lakeversion.errors import ChecksFailed

    events.branch("dev").create()
    events.branch("dev").delta("db.events").append(data((5, "a", 50)))
    main = events.branch("main")
    main.protect()
    merge = events.ref("dev").merge_into("main").new_head
    assert merge is not None and len(events.store.get_commit(merge).parents) == 2
    main.add_check("nothing", python=f"{__name__}:refuse_everything")

    def files() -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in (tmp_path / "warehouse").rglob("*") if p.is_file()}

    before = files()
    with pytest.raises(ChecksFailed, match="refused"):
        main.revert(merge)
    assert main.head.id == merge and files() == before
    main.remove_check("nothing")
    result = main.revert(merge)
    assert result.checks == () and main.head.id == result.new_head
    assert sorted(rows(main.delta("db.events"))) == sorted(BASE)
    assert main.delta("db.events").history(1)[0]["operation"] == "LAKEVERSION ROLLBACK"
