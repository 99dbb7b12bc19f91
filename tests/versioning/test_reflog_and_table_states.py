"""`reflog(since)` and `table_states()`: what gc reads through the public interface, on
every backend, the REST client included."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Delete, Key, Put, RefType
from spark_lakeversion.versioning import VersionStore
from tests.versioning.helpers import namespace, table


def test_reflog_lists_every_movement_since_a_time_oldest_first(store: VersionStore) -> None:
    start = store.get_ref("main").head
    store.create_ref("dev", RefType.BRANCH, "main")
    c1 = store.commit("dev", [Put(Key.of("db.t"), table("t1", "v1"))], message="one")
    store.create_ref("v1", RefType.TAG, "dev")
    store.delete_ref("dev", force=True)
    entries = store.reflog(datetime(2001, 1, 1, tzinfo=timezone.utc))
    assert [(e.name, e.head, e.operation) for e in entries] == [
        ("main", start, "init"), ("dev", start, "create branch"), ("dev", c1.id, "commit"),
        ("v1", c1.id, "create tag"), ("dev", None, "delete")]
    times = [e.timestamp for e in entries]
    assert times == sorted(times)
    assert all(t.tzinfo is not None for t in times)


def test_reflog_keeps_the_entry_in_force_when_the_window_opens(store: VersionStore) -> None:
    first = store.commit("main", [Put(Key.of("db.t"), table("t1", "v1"))], message="one")
    store.commit("main", [Put(Key.of("db.t"), table("t1", "v2"))], message="two")
    time.sleep(0.01)
    since = datetime.now(timezone.utc)
    time.sleep(0.01)
    third = store.commit("main", [Put(Key.of("db.t"), table("t1", "v3"))], message="three")
    entries = store.reflog(since)
    assert [(e.name, e.head) for e in entries] == [
        ("main", store.get_commit(third.parents[0]).id), ("main", third.id)]
    assert first.id not in {e.head for e in entries}
    assert store.reflog(datetime.now(timezone.utc) + timedelta(hours=1)) == [
        entries[-1]]  # only the entry in force


def test_table_states_holds_every_table_state_ever_recorded_once(
        store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("db"), namespace()),
                          Put(Key.of("db.a"), table("a", "1"))], message="one")
    store.create_ref("dev", RefType.BRANCH, "main")
    store.commit("dev", [Put(Key.of("db.b"), table("b", "1")),
                         Put(Key.of("db.c"), table("a", "1"))], message="two")
    store.commit("dev", [Delete(Key.of("db.b"))], message="drop")
    store.delete_ref("dev", force=True)
    states = list(store.iter_table_states())
    assert sorted((c.id, c.fields["version"]) for c in states) == [("a", "1"), ("b", "1")]


def test_table_states_come_in_pages(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of(f"db.t{i}"), table(f"t{i}", "1")) for i in range(5)],
                 message="five")
    first = store.table_states(limit=2)
    assert len(first.states) == 2 and first.next_page_token is not None
    seen = list(first.states)
    token: str | None = first.next_page_token
    while token is not None:
        page = store.table_states(token, limit=2)
        seen.extend(page.states)
        token = page.next_page_token
    assert sorted(c.id for c in seen) == [f"t{i}" for i in range(5)]
    assert sorted(c.id for c in store.iter_table_states()) == sorted(c.id for c in seen)


@pytest.mark.parametrize("token", ["nonsense", "0" * 39, "g" * 40])
def test_a_made_up_table_states_token_is_refused(store: VersionStore, token: str) -> None:
    with pytest.raises(InvalidInput, match="page_token"):
        store.table_states(token)
