"""`expected_head` on cherry-pick, revert and rollback: honoured by every backend, the REST
client included; a refused call writes nothing."""

from __future__ import annotations

import pytest

from spark_lakeversion.errors import ConflictError, ReferenceConflict
from spark_lakeversion.model import Key, Put, RefType
from spark_lakeversion.versioning import VersionStore
from tests.store.helpers import snapshot_of_store
from tests.versioning.helpers import table


def _moved_main(store: VersionStore) -> tuple[str, str, str]:
    """(a commit on dev to pick, main's head before it moved, main's head now)."""
    store.commit("main", [Put(Key.of("db.a"), table("a", "1"))], message="a1")
    store.create_ref("dev", RefType.BRANCH, "main")
    picked = store.commit("dev", [Put(Key.of("db.b"), table("b", "1"))], message="b1")
    before = store.get_ref("main").head
    now = store.commit("main", [Put(Key.of("db.a"), table("a", "2"))], message="a2").id
    return picked.id, before, now


def test_cherry_pick_refuses_a_moved_branch(store: VersionStore) -> None:
    picked, before, now = _moved_main(store)
    snapshot = snapshot_of_store(store)
    with pytest.raises(ReferenceConflict, match="is not at"):
        store.cherry_pick([picked], "main", expected_head=before)
    assert snapshot_of_store(store) == snapshot
    result = store.cherry_pick([picked], "main", expected_head=now[:12])
    assert result.new_head == store.get_ref("main").head
    assert store.get_content("main", "db.b") == table("b", "1")


def test_revert_refuses_a_moved_branch(store: VersionStore) -> None:
    _, before, now = _moved_main(store)
    snapshot = snapshot_of_store(store)
    with pytest.raises(ReferenceConflict, match="is not at"):
        store.revert(now, "main", expected_head=before)
    assert snapshot_of_store(store) == snapshot
    store.revert(now, "main", expected_head=now)
    assert store.get_content("main", "db.a") == table("a", "1")


def test_rollback_refuses_a_table_changed_since_the_expected_head(
        store: VersionStore) -> None:
    _, before, now = _moved_main(store)
    snapshot = snapshot_of_store(store)
    with pytest.raises(ConflictError, match="db.a changed on 'main'"):
        store.rollback_table("main", "db.a", "main~2", expected_head=before)
    assert snapshot_of_store(store) == snapshot
    store.rollback_table("main", "db.a", "main~2", expected_head=now)
    assert store.get_content("main", "db.a") is None
