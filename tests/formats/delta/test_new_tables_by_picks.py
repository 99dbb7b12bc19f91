"""A cherry-pick, a revert or a rollback that gives main a Delta table it does not have,
born on a branch log, takes it onto the table's root log as a merge does
(`test_new_tables_on_branches`): main's state is written as version 0 of the root log
(put-if-absent, no data file copied), plain readers of the root read main's rows, main's
next write lands on the root in place and the branch's next write stays on its own log.
A refused or failing one leaves no root log; a version 0 already there is a conflict.
On local files and on S3 (moto)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ChecksFailed, ConflictError, ProtectedBranch
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.format import DeltaFormat
from spark_lakeversion.model import Content, Key, MergeAction
from tests.formats.delta.helpers import (
    ID_P_V_ARROW,
    DeltaLake,
    Rows,
    all_files,
    data,
    live_files,
    newest_version,
    own_log,
    plain_rows,
    rows,
)
from tests.formats.delta.test_new_tables_on_branches import NEGATIVE, main_on_root, no_table_at

HOW = ["cherry-pick", "revert", "rollback"]


@dataclass
class OnDev:
    """`db.fresh` created on dev (one commit) with rows appended (the next commit), and
    branch qa made from dev that dropped it (`dropped`, the commit a revert undoes)."""

    created: str
    appended: str
    dropped: str
    state: DeltaState


def on_dev(catalog: Catalog, *rows_: tuple[int, str, int]) -> OnDev:
    catalog.branch("dev").create()
    fresh = catalog.branch("dev").delta("db.fresh")
    fresh.create(ID_P_V_ARROW)
    created = catalog.branch("dev").head.id
    fresh.append(data(*rows_))
    appended = catalog.branch("dev").head.id
    assert catalog.store.get_commit(appended).parents == (created,)
    catalog.branch("qa").create("dev")
    with catalog.branch("qa").transaction("drop db.fresh") as tx:
        tx.delete("db.fresh")
    state = fresh.state()
    assert state.writer == "dev" and state.location.startswith(f"{state.root}/_branches/")
    return OnDev(created, appended, catalog.branch("qa").head.id, state)


def give_main(catalog: Catalog, how: str, dev: OnDev) -> str:
    """Main gets dev's `db.fresh` by `how`: the new head of main."""
    main = catalog.branch("main")
    if how == "cherry-pick":
        result = main.cherry_pick(dev.created, dev.appended)
    elif how == "revert":  # undoing qa's drop brings back dev's state
        result = main.revert(dev.dropped)
    else:
        return main.rollback_table("db.fresh", to=dev.appended).id
    assert {str(d.key): d.action for d in result.details} == {
        "db.fresh": MergeAction.APPLIED}
    assert result.new_head is not None
    return result.new_head


def refused_by(how: str) -> type[Exception]:
    return ChecksFailed if how == "revert" else ProtectedBranch


@pytest.mark.parametrize("how", HOW)
def test_a_table_new_to_main_is_written_as_root_version_0(
        lake: DeltaLake, events: Catalog, how: str) -> None:
    dev = on_dev(events, (1, "a", 1), (2, "b", 2))
    root, expected = dev.state.root, [(1, "a", 1), (2, "b", 2)]
    no_table_at(lake, root)
    if how != "rollback":  # a dry run writes nothing
        main = events.branch("main")
        dry = main.cherry_pick(dev.created, dev.appended, dry_run=True) \
            if how == "cherry-pick" else main.revert(dev.dropped, dry_run=True)
        assert dry.dry_run and dry.new_head is None
        no_table_at(lake, root)
    new_head = give_main(events, how, dev)
    assert events.branch("main").head.id == new_head
    after = main_on_root(lake, events, root, 0, expected)
    # the root log is one version holding exactly dev's files: none copied
    assert set(own_log(lake, root)) == {log.log_name(0)}
    assert {uri for uri, _ in live_files(after, lake.io)} == {
        uri for uri, _ in live_files(dev.state, lake.io)}
    assert log.commit_info(0, root, lake.io)["operationParameters"] == {
        "sourceLocation": dev.state.location, "sourceVersion": str(dev.state.version)}
    assert events.branch("dev").delta("db.fresh").state() == dev.state  # dev keeps its log

    dev_handle = events.branch("dev").delta("db.fresh")
    dev_handle.append(data((3, "a", 3)))  # dev's next write does not reach the root
    assert (dev_handle.state().location, dev_handle.state().version) == (
        dev.state.location, dev.state.version + 1)
    assert newest_version(root, lake.io) == 0
    assert plain_rows(lake, root) == {"duckdb": expected, "deltalake": expected}

    events.branch("main").delta("db.fresh").append(data((4, "b", 4)))  # main: in place
    main_on_root(lake, events, root, 1, [*expected, (4, "b", 4)])
    assert rows(dev_handle) == [*expected, (3, "a", 3)]


@pytest.mark.parametrize("how", HOW)
def test_a_refused_pick_on_protected_main_writes_no_root_log(
        lake: DeltaLake, events: Catalog, how: str) -> None:
    """Protected main with a failing check: a cherry-pick or a rollback to a state never
    published on main is refused before anything is written; a revert goes through the
    checks, which refuse it (its preview on a side log). Once allowed, root version 0."""
    main = events.branch("main")
    dev = on_dev(events, (1, "a", -1), (2, "b", 2))
    main.add_check("non-negative", sql=NEGATIVE)
    main.protect()
    head = main.head.id
    with pytest.raises(refused_by(how)) as caught:
        give_main(events, how, dev)
    assert main.head.id == head
    assert events.store.get_content(head, Key.of("db.fresh")) is None
    no_table_at(lake, dev.state.root)
    if how == "revert":
        preview = caught.value.preview  # type: ignore[attr-defined]
        assert preview is not None  # the checks read dev's state, on a side log
        state = events.ref(preview).delta("db.fresh").state()
        assert state.location.startswith(f"{dev.state.root}/_branches/")
        assert rows(events.ref(preview).delta("db.fresh")) == [(1, "a", -1), (2, "b", 2)]
    main.remove_check("non-negative")
    if how != "revert":
        main.unprotect()
    give_main(events, how, dev)  # (a revert on protected main: through the gate)
    main_on_root(lake, events, dev.state.root, 0, [(1, "a", -1), (2, "b", 2)])


@pytest.mark.parametrize("how", HOW)
def test_main_protected_after_the_root_write_leaves_no_root_log(
        lake: DeltaLake, events: Catalog, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Main protected while the root log's version 0 is being written: the commit is
    refused in its transaction, and what was written for it is deleted."""
    main = events.branch("main")
    head = main.head.id
    dev = on_dev(events, (1, "a", 1))
    dev_files = all_files(dev.state.location, lake.io)
    original = DeltaFormat.publish_preview

    def then_protected(self: DeltaFormat, *args: object, **kwargs: object
                       ) -> tuple[Content, Callable[[], None]]:
        out = original(self, *args, **kwargs)  # type: ignore[arg-type]
        assert newest_version(dev.state.root, lake.io) == 0
        main.protect()
        return out

    monkeypatch.setattr(DeltaFormat, "publish_preview", then_protected)
    with pytest.raises(ProtectedBranch):
        give_main(events, how, dev)
    monkeypatch.undo()
    assert main.head.id == head
    no_table_at(lake, dev.state.root)
    assert all_files(dev.state.location, lake.io) == dev_files  # dev's log and files stay
    main.unprotect()
    give_main(events, how, dev)
    main_on_root(lake, events, dev.state.root, 0, [(1, "a", 1)])


@pytest.mark.parametrize("how", HOW)
def test_a_commit_failing_after_the_root_write_deletes_only_what_it_wrote(
        lake: DeltaLake, events: Catalog, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    main = events.branch("main")
    head = main.head.id
    dev = on_dev(events, (1, "a", 1))
    dev_files = all_files(dev.state.location, lake.io)
    commits = events.store._commits  # type: ignore[attr-defined]

    def failing(*args: object, **kwargs: object) -> object:
        """The commit fails after the root log's version 0 was written."""
        assert newest_version(dev.state.root, lake.io) == 0
        raise OSError("the store's disk is full")

    monkeypatch.setattr(commits, "write", failing)
    with pytest.raises(OSError, match="disk is full"):
        give_main(events, how, dev)
    monkeypatch.undo()
    assert main.head.id == head
    no_table_at(lake, dev.state.root)
    assert all_files(dev.state.location, lake.io) == dev_files
    give_main(events, how, dev)
    main_on_root(lake, events, dev.state.root, 0, [(1, "a", 1)])


@pytest.mark.parametrize("how", HOW)
def test_a_root_log_already_there_is_a_conflict_never_overwritten(
        lake: DeltaLake, events: Catalog, how: str) -> None:
    main = events.branch("main")
    head = main.head.id
    dev = on_dev(events, (1, "a", 1))
    other = log.read_state(dev.state.location, dev.state.version, io=lake.io)
    root = dev.state.root
    assert log.write_commit(root, 0, [{"protocol": other.protocol},
                                      {"metaData": other.metadata}],
                            "SOMEONE ELSE", io=lake.io) is not None
    root_log = own_log(lake, root)
    with pytest.raises(ConflictError, match="has a log already"):
        give_main(events, how, dev)
    assert main.head.id == head and own_log(lake, root) == root_log
    assert plain_rows(lake, root) == {"duckdb": [], "deltalake": []}
    assert storage.read_bytes(log.commit_uri(root, 0), lake.io) == root_log[log.log_name(0)]


def test_main_taking_back_its_own_table_writes_nothing_new(
        lake: DeltaLake, events: Catalog) -> None:
    """A table main had (taken onto the root log by a merge) and dropped comes back by a
    revert of the drop or a rollback to before it as main's state on the root log, which
    is left as it is; main's next write is its next version."""
    dev = on_dev(events, (1, "a", 1))
    events.store.merge("dev", "main")
    main = events.branch("main")
    had = main.head.id
    root_log = own_log(lake, dev.state.root)
    expected: Rows = [(1, "a", 1)]
    main_on_root(lake, events, dev.state.root, 0, expected)
    for back in ("revert", "rollback"):
        with main.transaction("drop db.fresh") as tx:
            tx.delete("db.fresh")
        dropped = main.head.id
        if back == "revert":
            main.revert(dropped)
        else:
            main.rollback_table("db.fresh", to=had)
        assert own_log(lake, dev.state.root) == root_log
        main_on_root(lake, events, dev.state.root, 0, expected)
    main.delta("db.fresh").append(data((2, "b", 2)))
    main_on_root(lake, events, dev.state.root, 1, [*expected, (2, "b", 2)])
