"""Every write takes one request value (`versioning/requests.py`), as merges take
`MergeOptions`: each implementation provides only the request form; the keyword forms are
the interface's own, and both reach the same write, over every backend and the REST client."""

from __future__ import annotations

import pytest

from spark_lakeversion.errors import InvalidInput, ProtectedBranch
from spark_lakeversion.model import Put, RefType
from spark_lakeversion.versioning.access import CLIENT_AUTHOR, AccessControlledStore
from spark_lakeversion.versioning.control import VersionControl
from spark_lakeversion.versioning.http import RestVersionStore
from spark_lakeversion.versioning.interface import VersionStore
from spark_lakeversion.versioning.requests import (
    CommitRequest,
    PickRequest,
    RefAssign,
    RefCreate,
    RefDelete,
    RollbackRequest,
)
from tests.versioning.helpers import namespace
from tests.versioning.test_access import principals

KEYWORD_FORMS = ("create_ref", "delete_ref", "assign_ref", "commit", "cherry_pick", "revert",
                 "rollback_table", "merge")


@pytest.mark.parametrize("implementation",
                         [VersionControl, RestVersionStore, AccessControlledStore])
def test_implementations_take_only_the_request_values(implementation: type) -> None:
    for name in KEYWORD_FORMS:
        assert getattr(implementation, name) is getattr(VersionStore, name), name
    for name in ("create_ref_with", "delete_ref_with", "assign_ref_with", "commit_with",
                 "pick_with", "rollback_table_with", "merge_with"):
        assert name in VersionStore.__abstractmethods__
        assert getattr(implementation, name) is not getattr(VersionStore, name), name


def test_every_write_by_its_request_value(store: VersionStore) -> None:
    first = store.commit_with(CommitRequest("main", [Put(("db",), namespace())], "db",
                                            author="ann", properties={"run": "1"}))
    assert (first.author, first.message, first.properties["run"]) == ("ann", "db", "1")
    dev = store.create_ref_with(RefCreate("dev", RefType.BRANCH, "main"))
    assert dev.head == first.id
    added = store.commit_with(CommitRequest("dev", [Put(("db", "t"), namespace())], "t",
                                            expected_head=first.id))
    picked = store.pick_with(PickRequest("cherry-pick", [added.id], "main", dry_run=True))
    assert (picked.dry_run, picked.new_head) == (True, None)
    assert store.get_ref("main").head == first.id  # a dry run wrote nothing
    reverted = store.pick_with(PickRequest("revert", [added.id], "dev", author="bob"))
    assert store.get_content("dev", "db.t") is None
    assert store.get_commit(reverted.new_head or "").author == "bob"
    back = store.rollback_table_with(RollbackRequest("dev", "db.t", added.id,
                                                     message="back", properties={"r": "2"}))
    assert (back.message, back.properties["r"]) == ("back", "2")
    assert store.get_content("dev", "db.t") is not None
    assert store.assign_ref_with(RefAssign("dev", "main")).head == first.id
    store.delete_ref_with(RefDelete("dev", RefType.BRANCH))
    assert [r.name for r in store.list_refs()] == ["main"]


def test_a_forced_reset_of_a_protected_branch_by_request(store: VersionStore) -> None:
    first = store.commit(("main"), [Put(("db",), namespace())], message="db")
    store.commit("main", [Put(("db", "t"), namespace())], message="t")
    store.protect_branch("main")
    with pytest.raises(ProtectedBranch):
        store.assign_ref_with(RefAssign("main", first.id))
    assert store.assign_ref_with(RefAssign("main", first.id, force=True)).head == first.id


def test_a_pick_request_is_checked_when_made() -> None:
    with pytest.raises(InvalidInput, match="unknown pick 'squash'"):
        PickRequest("squash", ["abc"], "main")
    with pytest.raises(InvalidInput, match="exactly one commit"):
        PickRequest("revert", ["abc", "def"], "main")


def test_the_access_layer_reads_the_request_and_authors_it(store_url: str) -> None:
    from spark_lakeversion.wiring import open_store

    db = open_store(store_url)
    try:
        etl = AccessControlledStore(db, principals()["etl"])
        db.commit("main", [Put(("db",), namespace())], message="db")
        etl.create_ref_with(RefCreate("etl-1"))
        made = etl.commit_with(CommitRequest("etl-1", [Put(("db", "t"), namespace())], "t",
                                             author="someone"))
        assert (made.author, made.properties[CLIENT_AUTHOR]) == ("etl", "someone")
        reverted = etl.pick_with(PickRequest("revert", [made.id], "etl-1"))
        assert db.get_commit(reverted.new_head or "").author == "etl"
        ops = [(r.operation, r.ref) for r in db.audit()]
        assert ops == [("create_ref", "etl-1"), ("commit", "etl-1"), ("revert", "etl-1")]
    finally:
        db.close()


def test_a_delete_that_may_not_remove_a_protected_branch(store: VersionStore) -> None:
    store.commit("main", [Put(("db",), namespace())], message="db")
    store.create_ref("dev")
    store.protect_branch("dev")
    request = RefDelete("dev", force=True, allow_protected=False)
    if isinstance(store, RestVersionStore):  # the server decides it from the token's grants
        with pytest.raises(InvalidInput, match="the server's to decide"):
            store.delete_ref_with(request)
    else:
        with pytest.raises(ProtectedBranch, match="needs admin"):
            store.delete_ref_with(request)
    assert "dev" in {r.name for r in store.list_refs()}
    store.delete_ref_with(RefDelete("dev", force=True))
    assert "dev" not in {r.name for r in store.list_refs()}
