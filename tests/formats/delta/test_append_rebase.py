"""Blind appends through the Delta handle that lose the race are written again on the new
state when everything that landed in between commutes with an append (Delta's own
`ConcurrentAppend` rule), and conflict as before otherwise: a schema or property change
in between, or the table property `lakeversion.rebase-appends=false`.

The race is made real: two threads with their own catalogs, or another writer's commit
landing (through a second catalog) after the append read the branch and before it wrote."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ConflictError
from spark_lakeversion.formats.delta import handle as handle_module
from spark_lakeversion.formats.delta import log, rebase
from spark_lakeversion.formats.delta.branching import writable
from spark_lakeversion.formats.delta.handle import DeltaHandle
from tests.formats.delta.helpers import DeltaLake, Rows, data, rows, sorted_rows

BASE = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]


def _query(handle: DeltaHandle) -> Rows:
    from deltalake import QueryBuilder

    return sorted_rows(QueryBuilder().register("t", handle.table).execute("SELECT * FROM t"))


@contextmanager
def landing_first(monkeypatch: pytest.MonkeyPatch, other: Callable[[], Any]) -> Iterator[None]:
    """Run `other` (another writer's commit) once, after the next write read the branch's
    state and before it writes its log version."""
    fired: list[bool] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(True)
            other()
        return writable(*args, **kwargs)

    monkeypatch.setattr(handle_module, "writable", racing)
    yield
    assert fired, "the other writer never ran"


def change_configuration(catalog: Catalog, table: str, configuration: dict[str, str]
                         ) -> None:
    """Another writer's metaData commit on main (a property change: Delta's
    MetadataChanged), landed on the branch's log and in the store."""
    handle = catalog.branch("main").delta(table)
    head = catalog.store.resolve("main").commit_id
    state = handle.state()
    target = writable(state, "main", catalog.store.io_properties)
    files = log.read_state(target.state.location, target.state.version,
                           io=catalog.store.io_properties)
    metadata = {**files.metadata, "configuration": {**files.configuration, **configuration}}
    version = target.state.version + 1
    assert log.write_commit(target.state.location, version, [{"metaData": metadata}],
                            "SET TBLPROPERTIES", io=catalog.store.io_properties)
    handle._commit("main", head, target.state.at(version).content(), "set properties",
                   {}, base=state.content())


def test_an_append_losing_to_another_append_is_rebased(
        events: Catalog, lake: DeltaLake, monkeypatch: pytest.MonkeyPatch) -> None:
    other = lake.open_again()
    mine = events.branch("main").delta("db.events")
    before = mine.state()
    with landing_first(monkeypatch, lambda: other.branch("main").delta("db.events").append(
            data((5, "b", 50)))):
        commit = mine.append(data((6, "a", 60)))
    assert commit is not None
    assert commit.properties[rebase.REBASED] == f"{before.location}@{before.version}"
    after = mine.state()
    assert (after.location, after.version) == (before.location, before.version + 2)
    assert log.commit_info(after.version, after.location, lake.io)[rebase.REBASED] == \
        f"{before.location}@{before.version}"
    expected = sorted([*BASE, (5, "b", 50), (6, "a", 60)])
    assert rows(mine) == expected
    assert _query(mine) == expected


def test_an_append_after_a_delete_is_rebased(
        events: Catalog, lake: DeltaLake, monkeypatch: pytest.MonkeyPatch) -> None:
    other = lake.open_again()
    mine = events.branch("main").delta("db.events")
    with landing_first(monkeypatch, lambda: other.branch("main").delta("db.events").delete(
            "p = 'a'")):
        commit = mine.append(data((6, "a", 60)))
    assert commit is not None and rebase.REBASED in commit.properties
    assert rows(mine) == [(3, "b", 30), (6, "a", 60)]


def test_an_append_racing_a_metadata_change_conflicts_and_writes_nothing(
        events: Catalog, lake: DeltaLake, monkeypatch: pytest.MonkeyPatch) -> None:
    other = lake.open_again()
    mine = events.branch("main").delta("db.events")
    with landing_first(monkeypatch, lambda: change_configuration(
            other, "db.events", {"delta.appendOnly": "false"})), \
            pytest.raises(ConflictError):
        mine.append(data((6, "a", 60)))
    state = mine.state()
    assert log.latest_version(state.location, lake.io) == state.version  # nothing left
    assert rows(mine) == BASE


def test_with_the_property_off_an_append_conflicts_as_before(
        events: Catalog, lake: DeltaLake, monkeypatch: pytest.MonkeyPatch) -> None:
    change_configuration(events, "db.events", {rebase.REBASE_PROPERTY: "false"})
    other = lake.open_again()
    mine = events.branch("main").delta("db.events")
    with landing_first(monkeypatch, lambda: other.branch("main").delta("db.events").append(
            data((5, "b", 50)))), pytest.raises(ConflictError):
        mine.append(data((6, "a", 60)))
    assert rows(mine) == sorted([*BASE, (5, "b", 50)])


def test_two_threads_appending_to_one_branch_lose_nothing(
        events: Catalog, lake: DeltaLake) -> None:
    per_writer = 4
    acknowledged: list[tuple[int, str, int]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def writer(first: int) -> None:
        handle = lake.open_again().branch("main").delta("db.events")
        for i in range(first, first + per_writer):
            row = (i, "ab"[i % 2], i * 10)
            try:
                handle.append(data(row))
            except BaseException as exc:  # noqa: BLE001 - reported below
                with lock:
                    failures.append(exc)
                continue
            with lock:
                acknowledged.append(row)

    threads = [threading.Thread(target=writer, args=(first,)) for first in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    mine = events.branch("main").delta("db.events")
    expected = sorted([*BASE, *acknowledged])
    assert len(acknowledged) == 2 * per_writer
    assert rows(mine) == expected
    assert _query(mine) == expected
