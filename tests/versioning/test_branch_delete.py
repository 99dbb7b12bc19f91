"""Deleting a branch is git's ``-d`` (refused while it holds commits no other branch or tag
holds: `UnmergedBranch`, naming how many) unless forced, git's ``-D``; protection is a
second rule under the same `force`. Every backend and the REST client."""

from __future__ import annotations

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ConflictError, ProtectedBranch, UnmergedBranch
from spark_lakeversion.model import Put, RefType
from spark_lakeversion.versioning import VersionStore
from tests.store.helpers import snapshot_of_store
from tests.versioning.helpers import table


def _work(store: VersionStore, branch: str, n: int) -> None:
    for i in range(n):
        key = f"t_{branch}"  # one table per branch: merges never conflict
        store.commit(branch, [Put(key, table(key, f"{branch}-{i}"))], message=f"{branch} {i}")


def _heads(store: VersionStore) -> dict[str, str]:
    return {r.name: r.head for r in store.list_refs()}


def test_unmerged_commits_refuse_deletion_naming_the_count_and_the_flag(
        store: VersionStore) -> None:
    store.create_ref("dev")
    _work(store, "dev", 3)
    before, rows = _heads(store), snapshot_of_store(store)
    with pytest.raises(UnmergedBranch) as refused:
        store.delete_ref("dev")
    assert isinstance(refused.value, ConflictError) and refused.value.code == "UNMERGED_BRANCH"
    message = refused.value.message
    assert "branch 'dev' has 3 commit(s) that no other branch or tag contains" in message
    assert "--force" in message and "DROP BRANCH dev FORCE" in message
    assert _heads(store) == before and snapshot_of_store(store) == rows
    store.delete_ref("dev", force=True)
    assert "dev" not in _heads(store)


def test_a_branch_whose_commits_another_ref_holds_is_deleted_without_force(
        store: VersionStore) -> None:
    store.create_ref("fresh")  # no commits of its own
    store.delete_ref("fresh")
    store.create_ref("merged")
    _work(store, "merged", 2)
    _work(store, "main", 1)
    store.merge("merged", "main", fast_forward=False)  # a merge commit holds them
    store.delete_ref("merged")
    store.create_ref("base")
    store.create_ref("stacked", from_ref="base")
    _work(store, "base", 1)
    _work(store, "stacked", 2)
    store.create_ref("keep", type=RefType.TAG, from_ref="stacked")  # a tag holds them too
    store.delete_ref("stacked")
    with pytest.raises(UnmergedBranch, match="has 1 commit"):
        store.delete_ref("base")  # base's own commit is on no other ref


def test_counting_follows_both_parents_of_merges(store: VersionStore) -> None:
    store.create_ref("dev")
    store.create_ref("side")
    _work(store, "side", 2)
    _work(store, "dev", 1)
    store.merge("side", "dev", fast_forward=False)  # dev: 1 + merge commit; side's 2 held
    with pytest.raises(UnmergedBranch, match="has 2 commit"):
        store.delete_ref("dev")
    store.delete_ref("side")  # dev holds side's commits
    with pytest.raises(UnmergedBranch, match="has 4 commit"):
        store.delete_ref("dev")  # now side's commits are dev's alone


def test_protection_and_unmerged_commits_share_force(store: VersionStore) -> None:
    store.create_ref("release")
    _work(store, "release", 1)
    store.protect_branch("release")
    with pytest.raises(ProtectedBranch):
        store.delete_ref("release")  # protection is checked first, and says so
    store.delete_ref("release", force=True)
    assert "release" not in _heads(store)


def test_python_handles_take_force(store: VersionStore) -> None:
    catalog = Catalog(store)
    dev = catalog.branch("dev").create()
    _work(store, "dev", 1)
    with pytest.raises(UnmergedBranch, match="has 1 commit"):
        dev.delete()
    assert dev.exists()
    dev.delete(force=True)
    assert not dev.exists()
