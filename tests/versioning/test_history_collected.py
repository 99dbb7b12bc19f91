"""Time travel after gc (issue 9): restoring, merging, cherry-picking or reverting from a
commit outside gc's retained history is refused with `HistoryCollected`, on every backend
and every surface (Python, CLI, REST); ref heads and commits newer than gc keep working."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import HistoryCollected
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.model import Content, Key, Put, RefType
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning.http import RestVersionStore
from spark_lakeversion.wiring import open_store


def table(n: int) -> Content:
    """A Delta table: `/api/v1/commits` checks only that its location parses (an Iceberg
    content must name a readable metadata file under the server's roots)."""
    return Content(DELTA_TABLE, id=f"t{n}", fields={"location": f"file:///nowhere/t{n}"})


@dataclass
class History:
    c1: str  # main~2: db.a v1
    c2: str  # main~1: db.b
    c3: str  # main:   db.a v3 (also dev's base)
    d1: str  # dev's head
    g1: str  # the head of a deleted branch: dangling


def build(store: VersionStore) -> History:
    def put(branch: str, key: str, n: int) -> str:
        return store.commit(branch, [Put(Key.of(key), table(n))], message=f"{key} {n}").id

    c1 = put("main", "db.a", 1)
    c2 = put("main", "db.b", 2)
    c3 = put("main", "db.a", 3)
    store.create_ref("dev", RefType.BRANCH, "main")
    d1 = put("dev", "db.c", 4)
    store.create_ref("gone", RefType.BRANCH, "main")
    g1 = put("gone", "db.d", 5)
    store.delete_ref("gone", force=True)
    return History(c1, c2, c3, d1, g1)


def collect(store: VersionStore) -> None:
    """What a real gc run with `--keep-commits-since 0s` records before it deletes (over
    HTTP: a real run on the server)."""
    if isinstance(store, RestVersionStore):
        store.gc_on_server(older_than=timedelta(hours=1), keep_commits_since=timedelta(0),
                           dry_run=False)
        assert store.gc_state().epoch == 1
        return
    now = datetime.now(timezone.utc)
    store.begin_gc(now, now)


def refs(store: VersionStore) -> dict[str, str]:
    return {r.name: r.head for r in store.list_refs()}


def check_refusals(store: VersionStore, h: History) -> None:
    before = refs(store)
    main_a = store.get_content("main", "db.a")
    refused = [
        lambda: store.create_ref("x", RefType.BRANCH, h.c1),
        lambda: store.create_ref("t", RefType.TAG, "main~1"),
        lambda: store.assign_ref("dev", h.c1),
        lambda: store.assign_ref("dev", h.g1),
        lambda: store.merge(h.g1, "main"),
        lambda: store.merge(h.g1, "main", dry_run=True),
        lambda: store.cherry_pick([h.g1], "main"),
        lambda: store.cherry_pick([h.c2], "main"),
        lambda: store.revert(h.c3, "main"),  # writes the state before c3: collected
        lambda: store.rollback_table("main", "db.a", h.c1),
        lambda: store.rollback_table("main", "db.a", "main~2"),
    ]
    for attempt in refused:
        with pytest.raises(HistoryCollected, match="outside gc's retained history"):
            attempt()
    assert refs(store) == before  # nothing was written
    assert store.get_content("main", "db.a") == main_a


def check_allowed(store: VersionStore, h: History) -> None:
    # ref heads keep working
    assert store.create_ref("from-head", RefType.BRANCH, h.d1).head == h.d1
    assert store.create_ref("from-tag-head", RefType.TAG, "main").head == h.c3
    assert store.revert(h.d1, "dev").new_head  # the state before d1 is main's head c3
    # dev~1 is d1: dev's head when gc's window opened, which `dev#<time>` resolves to
    store.rollback_table("main", "db.c", "dev~1")
    # commits made after the gc run began are recent: usable though no longer heads
    recent = store.get_ref("main").head
    store.commit("main", [Put(Key.of("db.e"), table(6))], message="later")
    assert store.create_ref("from-recent", RefType.BRANCH, recent).head == recent
    assert store.assign_ref("from-head", recent).head == recent
    assert store.cherry_pick([recent], "dev").new_head


def test_every_operation_from_collected_history_is_refused(store: VersionStore) -> None:
    h = build(store)
    # before any gc run, every commit is usable
    assert store.create_ref("early", RefType.BRANCH, h.c1).head == h.c1
    store.delete_ref("early", force=True)
    collect(store)
    check_refusals(store, h)
    check_allowed(store, h)


def test_a_deleted_branchs_recent_head_is_refused_after_gc(store: VersionStore) -> None:
    """Within the history window, gc still did not retain what no ref reaches any more
    (a deleted branch's head): its files may be gone, so it cannot come back."""
    h = build(store)
    if isinstance(store, RestVersionStore):
        store.gc_on_server(older_than=timedelta(hours=1), keep_commits_since=timedelta(days=7),
                           dry_run=False)
    else:
        now = datetime.now(timezone.utc)
        store.begin_gc(now - timedelta(days=1), now - timedelta(days=7))
    with pytest.raises(HistoryCollected):
        store.create_ref("restored", RefType.BRANCH, h.g1)
    with pytest.raises(HistoryCollected):
        store.merge(h.g1, "main")
    # commits a ref still reaches within the window are retained
    assert store.create_ref("old-main", RefType.BRANCH, h.c1).head == h.c1
    assert store.revert(h.c2, "dev").new_head
    assert {r.name for r in store.list_refs()} == {"main", "dev", "old-main"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def test_cli_exit_code_and_error(sqlite_url: str, tmp_path: Path) -> None:
    store = open_store(sqlite_url)
    h = build(store)
    store.close()
    runner = CliRunner()
    warehouse = tmp_path / "warehouse"
    ran = runner.invoke(cli, ["--store", sqlite_url, "-o", "json", "gc",
                              "--keep-commits-since", "0s", "--warehouse", str(warehouse)])
    # the raw test contents name no real metadata: gc skips those tables (exit code 5)
    assert ran.exit_code == 5, ran.output
    assert json.loads(ran.output)["gc_epoch"] == 1
    for args in (["branch", "create", "x", "--from", h.c1], ["tag", "create", "t", "--from",
                                                             "main~1"],
                 ["reset", "dev", "--to", h.c1], ["merge", h.g1],
                 ["revert", h.c3], ["rollback", "db.a", "--to", h.c1]):
        result = runner.invoke(cli, ["--store", sqlite_url, "-o", "json", *args])
        assert result.exit_code == 3, (args, result.output)
        error = json.loads(result.output)["error"]
        assert (error["type"], error["code"]) == ("HistoryCollected", "HISTORY_COLLECTED")
    ok = runner.invoke(cli, ["--store", sqlite_url, "branch", "create", "y", "--from", "dev"])
    assert ok.exit_code == 0, ok.output
    store = open_store(sqlite_url)
    assert set(refs(store)) == {"main", "dev", "y"}
    store.close()


@pytest.fixture
def served(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[RestVersionStore, str]]:
    with start_embedded_server(sqlite_url, warehouse=str(tmp_path / "warehouse")) as server:
        client = RestVersionStore(server.url)
        yield client, server.api_url
        client.close()


def test_over_rest(served: tuple[RestVersionStore, str]) -> None:
    store, api = served
    h = build(store)
    assert store.gc_state().epoch == 0
    answer = httpx.post(api + "/gc", json={"keep_commits_since": "0s", "older_than": "1h"})
    assert answer.status_code == 200, answer.text
    state = store.gc_state()
    assert state.epoch == 1 and state.retained_since is not None
    check_refusals(store, h)
    raw = httpx.post(api + "/refs", json={"name": "x", "from": h.c1})
    assert raw.status_code == 409
    assert raw.json()["error"]["type"] == "HistoryCollected"
    raw = httpx.post(api + "/rollback", json={"branch": "main", "table": "db.a", "to": h.c1})
    assert raw.status_code == 409 and raw.json()["error"]["code"] == "HISTORY_COLLECTED"
    check_allowed(store, h)
