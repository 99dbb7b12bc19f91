"""Protected branches refuse direct writes from every surface and write nothing; merges,
rollbacks to states published on the branch and gated reverts still land."""

from __future__ import annotations

import httpx
import pytest
from pyiceberg.exceptions import ForbiddenError

from spark_lakeversion.errors import ProtectedBranch
from spark_lakeversion.model import Put
from spark_lakeversion.versioning.http import RestVersionStore
from tests.lake import ServerLake


def unchanged(lake: ServerLake, head: str, files: set[object], branch: str = "main") -> None:
    assert lake.head(branch) == head
    assert lake.metadata_files() == files


def test_pyiceberg_append_to_protected_main_is_forbidden(lake: ServerLake) -> None:
    lake.store.protect_branch("main")
    head, files = lake.head(), lake.metadata_files()
    with pytest.raises(ForbiddenError, match="is protected: .*write to a branch and merge"):
        lake.append("main", "db.t", [9])
    unchanged(lake, head, files)
    assert lake.ids("main") == [1, 2, 3]


def test_api_v1_commit_is_403_protected_branch(lake: ServerLake) -> None:
    lake.store.protect_branch("main")
    head, files = lake.head(), lake.metadata_files()
    content = lake.store.get_content("main", "db.t").to_dict()
    with httpx.Client(base_url=lake.server.api_url) as http:
        answer = http.post("/commits", json={
            "branch": "main", "message": "direct",
            "operations": [{"op": "put", "key": ["db", "t2"], "content": content}]})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "PROTECTED_BRANCH"
    unchanged(lake, head, files)


def test_python_client_gets_typed_error_and_merges_still_land(lake: ServerLake) -> None:
    client = RestVersionStore(lake.server.url)
    try:
        assert client.protect_branch("main") is True
        assert client.protected_branches() == {"main"}
        client.create_ref("dev")
        lake.append("dev", "db.t", [4])
        head = lake.head()
        with pytest.raises(ProtectedBranch):
            client.commit("main", [Put("db.t", client.get_content("dev", "db.t"))],
                          message="direct")
        assert lake.head() == head
        with pytest.raises(ProtectedBranch):
            client.cherry_pick([lake.head("dev")], "main")
        assert lake.head() == head
        result = client.merge("dev", "main")
        assert result.new_head == lake.head() != head
        assert lake.ids("main") == [1, 2, 3, 4]
    finally:
        client.close()


def test_reset_and_delete_need_force(lake: ServerLake) -> None:
    store = lake.store
    store.create_ref("release")
    lake.append("release", "db.t", [7])
    store.protect_branch("release")
    head, files = lake.head("release"), lake.metadata_files()
    with pytest.raises(ProtectedBranch, match="resetting"):
        store.assign_ref("release", "main")
    with pytest.raises(ProtectedBranch, match="deleting"):
        store.delete_ref("release")
    unchanged(lake, head, files, "release")
    with httpx.Client(base_url=lake.server.api_url) as http:
        answer = http.post("/refs/delete", json={"name": "release"})
        assert answer.status_code == 403, answer.text
        unchanged(lake, head, files, "release")
        assert http.post("/refs/assign", json={"name": "release", "to": "main",
                                               "force": True}).status_code == 200
    assert lake.head("release") == lake.head("main")
    store.delete_ref("release", force=True)
    assert "release" not in {r.name for r in store.list_refs()}
    store.create_ref("release")  # a new branch of that name starts unprotected
    assert "release" not in store.protected_branches()


def test_rollback_restores_only_published_states_and_revert_is_gated(lake: ServerLake) -> None:
    store = lake.store
    published = lake.head()
    lake.append("main", "db.t", [4])  # before protection: a commit published on main
    bad = lake.head()
    store.create_ref("dev")
    lake.append("dev", "db.t", [99])
    store.protect_branch("main")
    head, files = lake.head(), lake.metadata_files()
    with pytest.raises(ProtectedBranch, match="first-parent history"):
        store.rollback_table("main", "db.t", "dev")
    unchanged(lake, head, files)
    commit = store.rollback_table("main", "db.t", published)
    assert commit.properties["lakeversion.recovery"] == "rollback"
    assert lake.ids("main") == [1, 2, 3]
    result = store.revert(commit.id, "main")  # a new state: through the gate (no checks)
    assert result.new_head == lake.head() and result.preview is not None
    assert lake.ids("main") == [1, 2, 3, 4]
    props = store.get_commit(lake.head()).properties
    assert props["lakeversion.checks"] == "none" and "lakeversion.recovery" not in props
    assert bad in {c.id for c in store.log("main", limit=10).commits}


def test_unprotect_lets_direct_writes_in_again(lake: ServerLake) -> None:
    lake.store.protect_branch("main")
    assert lake.store.unprotect_branch("main") is True
    assert lake.store.unprotect_branch("main") is False
    lake.append("main", "db.t", [4])
    assert lake.ids("main") == [1, 2, 3, 4]
