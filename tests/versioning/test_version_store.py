"""One behaviour suite for the version store, run on every backend (sqlite-memory,
sqlite-file, PostgreSQL)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from spark_lakeversion.errors import (
    AlreadyExists,
    CommitNotFound,
    ConflictError,
    InvalidInput,
    InvalidName,
    InvalidRefExpression,
    KeyNotFound,
    ReadOnlyRef,
    ReferenceConflict,
    RefNotFound,
)
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.model import (
    ConflictType,
    Content,
    Delete,
    DiffKind,
    Key,
    MergeAction,
    MergeBehavior,
    Put,
    RefType,
)
from spark_lakeversion.versioning import VersionStore
from tests.store.helpers import snapshot_of_store
from tests.versioning.helpers import namespace, table


def test_main_exists_after_initialisation(store: VersionStore) -> None:
    refs = store.list_refs()
    assert [(r.name, r.type) for r in refs] == [("main", RefType.BRANCH)]
    assert store.list_keys("main") == []


def test_commit_put_delete_and_read(store: VersionStore) -> None:
    c1 = store.commit("main", [Put(Key.of("db"), namespace()),
                               Put(Key.of("db.orders"), table("t1", "m1")),
                               Put(Key.of("a.b.events"), table("t2", "e1"))],
                      message="create", author="alice", properties={"job": "etl"})
    assert c1.parents == (store.get_ref("main").head,) or c1.id == store.get_ref("main").head
    assert store.get_commit(c1.id).author == "alice"
    assert store.get_commit(c1.id).properties == {"job": "etl"}
    assert store.get_content("main", "db.orders") == table("t1", "m1")
    assert store.get_content("main", ("a", "b", "events")) == table("t2", "e1")
    assert [str(k) for k, _ in store.list_keys("main")] == ["a.b.events", "db", "db.orders"]
    assert [str(k) for k, _ in store.list_keys("main", "db")] == ["db.orders"]
    assert [str(k) for k, _ in store.list_keys("main", "a")] == ["a.b.events"]
    store.commit("main", [Delete(Key.of("db.orders"))], message="drop")
    assert store.get_content("main", "db.orders") is None
    # the old state is still there, by commit id
    assert store.get_content(c1.id, "db.orders") == table("t1", "m1")


def test_commit_ids_are_content_hashes(store: VersionStore) -> None:
    c = store.commit("main", [Put(Key.of("t"), table("x", "1"))], message="m")
    assert re.fullmatch("[0-9a-f]{40}", c.id)
    assert c.timestamp.tzinfo is not None and c.timestamp.utcoffset() == timedelta(0)


def test_branches_are_isolated_and_cheap(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("db.t"), table("t", "v1"))], message="v1")
    dev = store.create_ref("dev", RefType.BRANCH, "main")
    assert dev.head == store.get_ref("main").head
    store.commit("dev", [Put(Key.of("db.t"), table("t", "v2"))], message="v2 on dev")
    assert store.get_content("main", "db.t") == table("t", "v1")
    assert store.get_content("dev", "db.t") == table("t", "v2")
    with pytest.raises(AlreadyExists):
        store.create_ref("dev")
    store.delete_ref("dev", force=True)  # its v2 is on no other ref
    with pytest.raises(RefNotFound):
        store.get_ref("dev")


def test_a_taken_name_is_refused_naming_what_holds_it_and_writes_nothing(
        store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("t"), table("t", "1"))], message="1")
    tag = store.create_ref("v1", RefType.TAG, "main")
    store.commit("main", [Put(Key.of("t"), table("t", "2"))], message="2")
    before = snapshot_of_store(store)
    with pytest.raises(AlreadyExists, match="a tag named 'v1' already exists"):
        store.create_ref("v1", RefType.BRANCH, "main")
    with pytest.raises(AlreadyExists, match="a branch named 'main' already exists"):
        store.create_ref("main", RefType.TAG, "v1")
    assert store.get_ref("v1") == tag
    assert snapshot_of_store(store) == before  # no ref, no reflog entry


def test_tags_are_read_only(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("t"), table("t", "1"))], message="1")
    store.create_ref("v1", RefType.TAG, "main")
    store.commit("main", [Put(Key.of("t"), table("t", "2"))], message="2")
    assert store.get_content("v1", "t") == table("t", "1")
    with pytest.raises(ReadOnlyRef, match="tag"):
        store.commit("v1", [Put(Key.of("t"), table("t", "3"))], message="no")
    with pytest.raises(ReadOnlyRef):
        store.assign_ref("v1", "main")
    with pytest.raises(ReadOnlyRef):
        store.commit("main~1", [Put(Key.of("t"), table("t", "3"))], message="no")
    assert store.get_content("v1", "t") == table("t", "1")


def test_ref_expressions(store: VersionStore) -> None:
    c1 = store.commit("main", [Put(Key.of("t"), table("t", "1"))], message="1")
    time.sleep(0.01)
    between = datetime.now(timezone.utc)
    time.sleep(0.01)
    c2 = store.commit("main", [Put(Key.of("t"), table("t", "2"))], message="2")
    assert store.resolve("main").commit_id == c2.id
    assert store.resolve("main").writable
    assert store.resolve("main~1").commit_id == c1.id
    assert not store.resolve("main~1").writable
    assert store.resolve(c1.id).commit_id == c1.id
    assert store.resolve(c1.id[:8]).commit_id == c1.id
    assert store.resolve(f"main#{between.isoformat()}").commit_id == c1.id
    assert store.get_content(f"main#{between.isoformat()}", "t") == table("t", "1")
    assert store.resolve(f"{c2.id}~1").commit_id == c1.id


@pytest.mark.parametrize("bad", ["", "a..b", "/a", "a/", ".a", "a.", "-a", "a b", "a@b",
                                 "a#b", "a~b", "a^b", "a:b", "a\\b", "HEAD", "x" * 129,
                                 "a\tb", "a//b", "0123456789abcdef0123456789abcdef01234567"])
def test_bad_ref_names_are_rejected_and_write_nothing(store: VersionStore, bad: str) -> None:
    before = snapshot_of_store(store)
    with pytest.raises(InvalidName):
        store.create_ref(bad)
    with pytest.raises(InvalidName):
        store.create_ref(bad, RefType.TAG)
    assert snapshot_of_store(store) == before


@pytest.mark.parametrize("bad", ["main~x", "main#yesterday", "~1", "#2020-01-01", "a..b~1",
                                 "main~", " main"])
def test_bad_ref_expressions_are_typed_errors(store: VersionStore, bad: str) -> None:
    before = snapshot_of_store(store)
    with pytest.raises(InvalidRefExpression):
        store.resolve(bad)
    with pytest.raises(InvalidRefExpression):
        store.create_ref("ok", RefType.BRANCH, bad)
    assert snapshot_of_store(store) == before


def test_unknown_refs_and_commits(store: VersionStore) -> None:
    before = snapshot_of_store(store)
    with pytest.raises(RefNotFound):
        store.resolve("nope")
    with pytest.raises(CommitNotFound):
        store.resolve("deadbeefdeadbeef")
    with pytest.raises(RefNotFound):
        store.commit("nope", [Put(Key.of("t"), table("t", "1"))], message="x")
    with pytest.raises(RefNotFound):
        store.resolve("main~5")
    assert snapshot_of_store(store) == before


def test_bad_operations_write_nothing(store: VersionStore) -> None:
    before = snapshot_of_store(store)
    with pytest.raises(InvalidInput):
        store.commit("main", [Put(Key.of("t"), table("t", "1")), Delete(Key.of("t"))],
                     message="twice")
    with pytest.raises(InvalidInput):
        store.commit("main", ["not an op"], message="x")  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        store.commit("main", [Put(Key.of("t"), table("t", "1"))], message="x",
                     properties={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput):
        Key.of("")
    with pytest.raises(InvalidInput):
        store.delete_ref("main")
    assert snapshot_of_store(store) == before


def test_expected_head_conflicts_only_on_touched_keys(store: VersionStore) -> None:
    base = store.commit("main", [Put(Key.of("a"), table("a", "1")),
                                 Put(Key.of("b"), table("b", "1"))], message="base")
    store.commit("main", [Put(Key.of("a"), table("a", "2"))], message="a moves",
                 expected_head=base.id)
    # b untouched since base: lands, rebased on the new head
    c = store.commit("main", [Put(Key.of("b"), table("b", "2"))], message="b moves",
                     expected_head=base.id)
    assert store.get_content("main", "a") == table("a", "2")
    assert store.get_content("main", "b") == table("b", "2")
    assert store.get_ref("main").head == c.id
    before = snapshot_of_store(store)
    with pytest.raises(ConflictError) as info:
        store.commit("main", [Put(Key.of("a"), table("a", "3"))], message="stale",
                     expected_head=base.id)
    assert [str(x.key) for x in info.value.conflicts] == ["a"]
    assert snapshot_of_store(store) == before


def test_assign_is_compare_and_swap(store: VersionStore) -> None:
    c1 = store.commit("main", [Put(Key.of("t"), table("t", "1"))], message="1")
    store.create_ref("dev")
    c2 = store.commit("dev", [Put(Key.of("t"), table("t", "2"))], message="2")
    with pytest.raises(ReferenceConflict):
        store.assign_ref("dev", c1.id, expected_head=c1.id)
    assert store.get_ref("dev").head == c2.id
    store.assign_ref("dev", c1.id, expected_head=c2.id)
    assert store.get_content("dev", "t") == table("t", "1")


def test_log_paging_and_key_filter(store: VersionStore) -> None:
    ids = []
    for i in range(7):
        key = "a" if i % 2 == 0 else "b"
        ids.append(store.commit("main", [Put(Key.of(key), table(key, str(i)))],
                                message=f"c{i}").id)
    page = store.log("main", limit=3)
    assert [c.message for c in page.commits] == ["c6", "c5", "c4"]
    page2 = store.log("main", limit=3, page_token=page.next_page_token)
    assert [c.message for c in page2.commits] == ["c3", "c2", "c1"]
    page3 = store.log("main", limit=3, page_token=page2.next_page_token)
    assert [c.message for c in page3.commits] == ["c0", "initial commit"]
    assert page3.next_page_token is None
    assert [c.message for c in store.log("main", key="b").commits] == ["c5", "c3", "c1"]
    with pytest.raises(InvalidInput):
        store.log("main", limit=0)


def test_diff(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("keep"), table("k", "1")),
                          Put(Key.of("change"), table("c", "1")),
                          Put(Key.of("drop"), table("d", "1"))], message="base")
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("change"), table("c", "2")), Delete(Key.of("drop")),
                         Put(Key.of("new"), table("n", "1"))], message="dev")
    diff = {str(d.key): d for d in store.diff("main", "dev")}
    assert {k: d.kind for k, d in diff.items()} == {
        "change": DiffKind.CHANGED, "drop": DiffKind.REMOVED, "new": DiffKind.ADDED}
    assert diff["change"].from_content == table("c", "1")
    assert diff["change"].to_content == table("c", "2")


def test_fast_forward_merge(store: VersionStore) -> None:
    store.create_ref("dev")
    c = store.commit("dev", [Put(Key.of("t"), table("t", "1"))], message="on dev")
    result = store.merge("dev", "main")
    assert result.fast_forward and result.new_head == c.id
    assert store.get_ref("main").head == c.id
    assert [d.action for d in result.details] == [MergeAction.FAST_FORWARDED]


def test_no_fast_forward_creates_merge_commit(store: VersionStore) -> None:
    store.create_ref("dev")
    c = store.commit("dev", [Put(Key.of("t"), table("t", "1"))], message="on dev")
    result = store.merge("dev", "main", fast_forward=False)
    assert not result.fast_forward
    merge_commit = store.get_commit(store.get_ref("main").head)
    assert merge_commit.parents[1] == c.id
    assert store.get_content("main", "t") == table("t", "1")


def test_three_way_merge_of_disjoint_tables(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("a"), table("a", "1")),
                          Put(Key.of("b"), table("b", "1"))], message="base")
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("a"), table("a", "dev"))], message="dev")
    store.commit("main", [Put(Key.of("b"), table("b", "main"))], message="main")
    result = store.merge("dev", "main")
    assert result.successful and not result.fast_forward
    assert store.get_content("main", "a") == table("a", "dev")
    assert store.get_content("main", "b") == table("b", "main")
    merge = store.get_commit(result.new_head or "")
    assert len(merge.parents) == 2
    assert result.common_ancestor == store.merge_base("main~1", "dev")


def test_conflict_types(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("changed"), table("c", "1")),
                          Put(Key.of("dropped_on_target"), table("d", "1")),
                          Put(Key.of("dropped_on_source"), table("s", "1")),
                          Put(Key.of("recreated"), table("r", "1"))], message="base")
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("changed"), table("c", "dev")),
                         Put(Key.of("dropped_on_target"), table("d", "dev")),
                         Delete(Key.of("dropped_on_source")),
                         Put(Key.of("recreated"), table("r-new-id", "dev")),
                         Put(Key.of("added"), table("x", "dev"))], message="dev")
    store.commit("main", [Put(Key.of("changed"), table("c", "main")),
                          Delete(Key.of("dropped_on_target")),
                          Put(Key.of("dropped_on_source"), table("s", "main")),
                          Put(Key.of("recreated"), table("r", "main")),
                          Put(Key.of("added"), table("y", "main"))], message="main")
    before = snapshot_of_store(store)
    with pytest.raises(ConflictError) as info:
        store.merge("dev", "main")
    types = {str(c.key): c.type for c in info.value.conflicts}
    assert types == {
        "changed": ConflictType.VALUE_DIFFERS,
        "dropped_on_target": ConflictType.KEY_DOES_NOT_EXIST,
        "dropped_on_source": ConflictType.VALUE_DIFFERS,
        "recreated": ConflictType.CONTENT_ID_DIFFERS,
        "added": ConflictType.KEY_EXISTS,
    }
    assert info.value.result is not None and info.value.result.new_head is None
    assert snapshot_of_store(store) == before


def test_merge_behaviours(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("a"), table("a", "1")),
                          Put(Key.of("b"), table("b", "1"))], message="base")
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("a"), table("a", "dev")),
                         Put(Key.of("b"), table("b", "dev"))], message="dev")
    store.commit("main", [Put(Key.of("a"), table("a", "main")),
                          Put(Key.of("b"), table("b", "main"))], message="main")
    result = store.merge("dev", "main", behaviors={"a": MergeBehavior.FORCE,
                                                   "b": MergeBehavior.DROP})
    assert store.get_content("main", "a") == table("a", "dev")
    assert store.get_content("main", "b") == table("b", "main")
    assert {str(d.key): d.action for d in result.details} == {
        "a": MergeAction.APPLIED, "b": MergeAction.KEPT}


def test_target_wins_default(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("a"), table("a", "1"))], message="base")
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("a"), table("a", "dev"))], message="dev")
    store.commit("main", [Put(Key.of("a"), table("a", "main"))], message="main")
    store.merge("dev", "main", default_behavior=MergeBehavior.parse("target-wins"))
    assert store.get_content("main", "a") == table("a", "main")
    with pytest.raises(InvalidInput):
        MergeBehavior.parse("whatever")


def test_dry_run_writes_nothing(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("a"), table("a", "1"))], message="base")
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("a"), table("a", "dev")),
                         Put(Key.of("b"), table("b", "dev"))], message="dev")
    before = snapshot_of_store(store)
    ff = store.merge("dev", "main", dry_run=True)
    assert ff.fast_forward and ff.dry_run and ff.new_head is None
    store_after_ff = snapshot_of_store(store)
    assert store_after_ff == before
    store.commit("main", [Put(Key.of("a"), table("a", "main"))], message="main")
    before = snapshot_of_store(store)
    conflicted = store.merge("dev", "main", dry_run=True)
    assert not conflicted.successful
    assert [c.type for c in conflicted.conflicts] == [ConflictType.VALUE_DIFFERS]
    clean = store.merge("dev", "main", dry_run=True, behaviors={"a": MergeBehavior.FORCE})
    assert clean.successful and clean.new_head is None
    assert snapshot_of_store(store) == before


def test_merge_twice_is_a_no_op(store: VersionStore) -> None:
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("a"), table("a", "1"))], message="dev")
    store.commit("main", [Put(Key.of("b"), table("b", "1"))], message="main")
    store.merge("dev", "main")
    head = store.get_ref("main").head
    again = store.merge("dev", "main")
    assert again.details == () and store.get_ref("main").head == head


def test_cherry_pick_and_revert(store: VersionStore) -> None:
    store.commit("main", [Put(Key.of("a"), table("a", "1"))], message="base")
    store.create_ref("dev")
    pick = store.commit("dev", [Put(Key.of("b"), table("b", "1"))], message="add b")
    store.commit("dev", [Put(Key.of("c"), table("c", "1"))], message="add c")
    store.cherry_pick([pick.id], "main")
    assert store.get_content("main", "b") == table("b", "1")
    assert store.get_content("main", "c") is None
    bad = store.commit("main", [Put(Key.of("a"), table("a", "bad"))], message="bad write")
    result = store.revert(bad.id, "main")
    assert result.successful
    assert store.get_content("main", "a") == table("a", "1")
    assert store.get_commit(store.get_ref("main").head).message == 'Revert "bad write"'
    store.commit("main", [Put(Key.of("b"), table("b", "2"))], message="b2")
    before = snapshot_of_store(store)
    with pytest.raises(ConflictError):
        store.revert(pick.id, "main")  # b changed since: reverting would lose b2
    assert snapshot_of_store(store) == before


def test_rollback_table(store: VersionStore) -> None:
    good = store.commit("main", [Put(Key.of("db.t"), table("t", "good")),
                                 Put(Key.of("db.u"), table("u", "1"))], message="good")
    store.commit("main", [Put(Key.of("db.t"), table("t", "bad")),
                          Put(Key.of("db.u"), table("u", "2"))], message="bad")
    commit = store.rollback_table("main", "db.t", good.id, properties={"run": "r1"})
    assert commit.properties["run"] == "r1"  # e.g. the run or DAG that rolled back
    assert store.get_content("main", "db.t") == table("t", "good")
    assert store.get_content("main", "db.u") == table("u", "2")  # other tables untouched
    assert commit.properties["lakeversion.rollback.to-commit"] == good.id
    store.rollback_table("main", "db.t", "main~3")  # before it existed: dropped
    assert store.get_content("main", "db.t") is None
    with pytest.raises(KeyNotFound):
        store.rollback_table("main", "db.nope", good.id)
    with pytest.raises(ReadOnlyRef):
        store.rollback_table(good.id, "db.t", "main")


def test_namespaces_are_versioned(store: VersionStore) -> None:
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("sales"), namespace({"owner": "x"}))], message="ns")
    assert store.get_content("main", "sales") is None
    assert store.get_content("dev", "sales") == namespace({"owner": "x"})


def test_many_keys_bulk_commit_and_prefix_listing(store: VersionStore) -> None:
    ops = [Put(Key.of(f"db{i % 7}.t{i:05d}"), table(f"id{i}", "1")) for i in range(3000)]
    store.commit("main", ops, message="bulk")
    assert len(store.list_keys("main")) == 3000
    db3 = store.list_keys("main", "db3")
    assert len(db3) == len([i for i in range(3000) if i % 7 == 3])
    assert all(k.elements[0] == "db3" for k, _ in db3)
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("db1.t00001"), table("id1", "2"))], message="one")
    assert [str(d.key) for d in store.diff("main", "dev")] == ["db1.t00001"]


def test_content_roundtrip_keeps_fields(store: VersionStore) -> None:
    value = Content(DELTA_TABLE, "delta-id", {"location": "file:///x", "version": 3})
    store.commit("main", [Put(Key.of("d"), value)], message="delta")
    assert store.get_content("main", "d") == value


def test_time_travel_to_a_commits_own_timestamp_finds_that_commit(store: VersionStore) -> None:
    c1 = store.commit("main", [Put(Key.of("t"), table("t", "1"))], message="1")
    store.commit("main", [Put(Key.of("t"), table("t", "2"))], message="2")
    assert store.resolve(f"main#{c1.timestamp.isoformat()}").commit_id == c1.id
    before_c1 = c1.timestamp - timedelta(microseconds=1)
    assert store.resolve(f"main#{before_c1.isoformat()}").commit_id == c1.parents[0]


def test_unreadable_iceberg_metadata_is_a_conflict_not_a_crash(store: VersionStore) -> None:
    def iceberg(version: str) -> Content:
        return Content(ICEBERG_TABLE, "t-id",
                       {"metadata_location": f"file:///nowhere/t/metadata/{version}.json"})

    # metadata files that vanished after their commits: `/api/v1/commits` refuses to
    # commit an unreadable one, so over REST the history is written to the server's store
    writer = getattr(store, "_backing", store)
    writer.commit("main", [Put(Key.of("db.t"), iceberg("1"))], message="base")
    writer.create_ref("dev")
    writer.commit("dev", [Put(Key.of("db.t"), iceberg("dev"))], message="dev")
    writer.commit("main", [Put(Key.of("db.t"), iceberg("main"))], message="main")
    result = store.merge("dev", "main", dry_run=True)
    assert [c.type for c in result.conflicts] == [ConflictType.UNSUPPORTED]
    assert "cannot merge inside db.t" in result.conflicts[0].message


def test_merge_options_are_checked_and_write_nothing(store: VersionStore) -> None:
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("a"), table("a", "1"))], message="dev")
    before = snapshot_of_store(store)
    with pytest.raises(InvalidInput, match="isolation_level"):
        store.merge("dev", "main", options={"isolation_level": "read-uncommitted"})
    assert snapshot_of_store(store) == before
    assert store.merge("dev", "main", options={"isolation_level": "snapshot"}).successful
