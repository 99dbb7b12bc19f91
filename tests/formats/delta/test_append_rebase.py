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
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.errors import ConflictError, ProtectedBranch
from spark_lakeversion.formats.delta import handle as handle_module
from spark_lakeversion.formats.delta import log, rebase
from spark_lakeversion.formats.delta.branching import writable
from spark_lakeversion.formats.delta.handle import DeltaHandle
from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings
from spark_lakeversion.server.embedded import start_embedded_server
from tests.formats.delta.helpers import ID_P_V_ARROW, DeltaLake, Rows, data, rows, sorted_rows

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


RETRIED = "Commit failed due to a concurrent update"  # pyiceberg's log line on a 409


def test_a_stale_pure_append_through_the_iceberg_facade_is_rebased(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pyiceberg.catalog.rest import RestCatalog

    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh")) as srv, \
            connect(srv.url, warehouse=str(tmp_path / "wh"), author="tester") as cat:
        mine = cat.branch("main").delta("db.events")
        mine.create(ID_P_V_ARROW, partition_by=["p"])
        mine.append(data((1, "a", 10)))
        table = RestCatalog("lv", uri=srv.iceberg_uri).load_table("db.events")
        read = mine.state()
        mine.append(data((2, "b", 20)))  # the log moves past the version the client read
        table.append(data((3, "a", 30)))
        assert RETRIED not in caplog.text  # answered 200 at once
        expected = [(1, "a", 10), (2, "b", 20), (3, "a", 30)]
        assert rows(mine) == expected
        assert _query(mine) == expected
        info = mine.history(1)[0]
        assert info["operationParameters"][rebase.REBASED] == f"{read.location}@{read.version}"
        head = cat.store.get_commit(cat.store.resolve("main").commit_id)
        assert head.properties["lakeversion.rebased"] == "true"
        assert table.refresh().current_snapshot().snapshot_id == \
            table.metadata.current_snapshot_id


def test_a_stale_facade_append_after_a_metadata_change_conflicts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pyiceberg.catalog.rest import RestCatalog

    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh")) as srv, \
            connect(srv.url, warehouse=str(tmp_path / "wh"), author="tester") as cat:
        mine = cat.branch("main").delta("db.events")
        mine.create(ID_P_V_ARROW, partition_by=["p"])
        mine.append(data((1, "a", 10)))
        table = RestCatalog("lv", uri=srv.iceberg_uri).load_table("db.events")
        change_configuration(cat, "db.events", {"delta.appendOnly": "false"})
        table.append(data((3, "a", 30)))  # 409, then pyiceberg's own retry lands
        assert RETRIED in caplog.text
        assert rows(mine) == [(1, "a", 10), (3, "a", 30)]


def test_with_rebase_off_on_the_server_a_stale_facade_append_conflicts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pyiceberg.catalog.rest import RestCatalog

    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               appends=AppendSettings(rebase=False)) as srv, \
            connect(srv.url, warehouse=str(tmp_path / "wh"), author="tester") as cat:
        mine = cat.branch("main").delta("db.events")
        mine.create(ID_P_V_ARROW, partition_by=["p"])
        table = RestCatalog("lv", uri=srv.iceberg_uri).load_table("db.events")
        mine.append(data((1, "a", 10)))
        table.append(data((3, "a", 30)))  # 409, then pyiceberg's own retry lands
        assert RETRIED in caplog.text
        assert rows(mine) == [(1, "a", 10), (3, "a", 30)]


def test_a_rebased_append_meets_branch_protection_and_writes_nothing(
        events: Catalog, lake: DeltaLake, monkeypatch: pytest.MonkeyPatch) -> None:
    other = lake.open_again()
    mine = events.branch("main").delta("db.events")

    def append_then_protect() -> None:
        other.branch("main").delta("db.events").append(data((5, "b", 50)))
        other.branch("main").protect()

    with landing_first(monkeypatch, append_then_protect), \
            pytest.raises(ProtectedBranch):
        mine.append(data((6, "a", 60)))
    state = mine.state()
    assert log.latest_version(state.location, lake.io) == state.version  # nothing left
    assert rows(mine) == sorted([*BASE, (5, "b", 50)])
