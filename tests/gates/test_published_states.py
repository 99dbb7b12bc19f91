"""Published states (issue 20): on a protected branch only states of its first-parent chain
come back (rollback, forced reset), a merge into it always makes a merge commit, and a
revert goes through its checks. The issue's reproductions, over /api/v1 by a principal
with only `read` and `write` on main, and through the Python store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.errors import ChecksFailed, ProtectedBranch
from spark_lakeversion.model import CheckKind, CheckSpec
from spark_lakeversion.server.embedded import start_embedded_server
from tests.lake import ROWS_SCHEMA, ServerLake
from tests.server.access_helpers import write_auth_config

NO_NULL_V = "SELECT * FROM db.t WHERE v IS NULL"
GRANTS = {"admin": '[{ refs = "*", allow = ["admin"] }]',
          "writer": '[{ refs = "main", allow = ["read", "write"] }]'}


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[ServerLake, dict[str, str]]]:
    """The issue's set-up on a server with principals: main protected with a not-null
    check; dev got a NULL row (C1), then its fix (C2), and was merged into main."""
    config = tmp_path / "auth.toml"
    tokens = write_auth_config(config, GRANTS)
    warehouse = tmp_path / "warehouse"
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}", warehouse=str(warehouse),
                               auth=load_auth_config(config)) as server:
        lake = ServerLake(server, warehouse, tokens["admin"])
        lake.create("db.t", [1, 2, 3])
        store = lake.store
        store.protect_branch("main")
        store.add_check(CheckSpec("main", "no_null_v", CheckKind.SQL, NO_NULL_V, (), 60.0))
        store.create_ref("dev")
        table = lake.catalog("dev").load_table("db.t")
        table.append(pa.table({"id": [4], "v": [None]}, schema=ROWS_SCHEMA))
        table = lake.catalog("dev").load_table("db.t")
        table.overwrite(pa.table({"id": [1, 2, 3, 4], "v": ["v1", "v2", "v3", "v4"]},
                                 schema=ROWS_SCHEMA))
        yield lake, tokens


def rows(lake: ServerLake, ref: str = "main") -> list[tuple[Any, ...]]:
    data = lake.catalog(ref).load_table("db.t").scan().to_arrow()
    return sorted(zip(data["id"].to_pylist(), data["v"].to_pylist()))


def api(lake: ServerLake, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=lake.server.api_url,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        return http.post(path, json=body)


class State:
    """What a refusal must leave alone: heads, main's rows, the metadata files."""

    def __init__(self, lake: ServerLake) -> None:
        self.lake = lake
        self.heads = {r.name: r.head for r in lake.store.list_refs()}
        self.rows = rows(lake)
        self.files = lake.metadata_files()

    def unchanged(self) -> None:
        assert {r.name: r.head for r in self.lake.store.list_refs()} == self.heads
        assert rows(self.lake) == self.rows
        assert self.lake.metadata_files() == self.files


def merged(lake: ServerLake) -> tuple[str, str, str]:
    """Merge dev into main (no fast-forward: main is protected): (C1, C2, merge commit)."""
    store = lake.store
    fix = lake.head("dev")
    null_row = store.get_commit(fix).parents[0]
    before = lake.head()
    result = store.merge("dev", "main")
    assert result.fast_forward is False and "no fast-forward" in (result.no_ff_reason or "")
    merge = store.get_commit(result.new_head)
    assert merge.parents == (before, fix)
    assert merge.properties["lakeversion.checks"] == "passed: no_null_v"
    return null_row, fix, merge.id


def test_rollback_to_a_source_commit_is_refused_over_api_v1(
        guarded: tuple[ServerLake, dict[str, str]]) -> None:
    lake, tokens = guarded
    null_row, fix, merge = merged(lake)
    state = State(lake)
    # the writer reads both commits through main's history; an admin names them by dev
    for who, to in (("writer", null_row), ("writer", fix), ("admin", "dev~1")):
        answer = api(lake, tokens[who], "/rollback",
                     {"branch": "main", "table": "db.t", "to": to})
        assert answer.status_code == 403, answer.text
        error = answer.json()["error"]
        assert error["code"] == "PROTECTED_BRANCH"
        assert "first-parent history (main, main~1" in error["message"]
        state.unchanged()
    assert (4, None) not in rows(lake)
    # main~1 is the state before the merge: published, so it comes back (as a recovery)
    answer = api(lake, tokens["writer"], "/rollback",
                 {"branch": "main", "table": "db.t", "to": "main~1"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["properties"]["lakeversion.recovery"] == "rollback"
    assert rows(lake) == [(1, "v1"), (2, "v2"), (3, "v3")]
    # and main@{1}, the head before that rollback (the merge), is published too
    answer = api(lake, tokens["writer"], "/rollback",
                 {"branch": "main", "table": "db.t", "to": "main@{1}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["properties"]["lakeversion.rollback.to-commit"] == merge
    assert rows(lake) == [(1, "v1"), (2, "v2"), (3, "v3"), (4, "v4")]


def test_revert_of_the_fix_goes_through_the_checks(
        guarded: tuple[ServerLake, dict[str, str]]) -> None:
    lake, tokens = guarded
    _, fix, _ = merged(lake)
    state = State(lake)
    runs = len(lake.store.check_runs("main", limit=100))
    answer = api(lake, tokens["writer"], "/revert", {"commit": fix, "branch": "main"})
    assert answer.status_code == 412, answer.text
    error = answer.json()["error"]
    assert error["code"] == "CHECKS_FAILED"
    [report] = error["reports"]
    assert report["name"] == "no_null_v" and report["status"] == "failed"
    assert report["samples"] == [{"id": 4, "v": None}]
    state.unchanged()
    assert len(lake.store.check_runs("main", limit=100)) == runs + 1
    with pytest.raises(ChecksFailed):  # a dry run checks too, and writes nothing
        lake.store.revert(fix, "main", dry_run=True)
    state.unchanged()


def test_revert_that_passes_is_published_with_its_checks(lake: ServerLake) -> None:
    store = lake.store
    store.protect_branch("main")
    store.add_check(CheckSpec("main", "no_null_v", CheckKind.SQL, NO_NULL_V, (), 60.0))
    store.create_ref("dev")
    lake.append("dev", "db.t", [4])
    added = lake.head("dev")
    merge = store.merge("dev", "main").new_head
    result = store.revert(added, "main")
    assert [(c["name"], c["status"]) for c in result.checks] == [("no_null_v", "passed")]
    assert result.new_head == lake.head() and result.target_head_before == merge
    commit = store.get_commit(result.new_head)
    assert commit.parents == (merge,)
    assert commit.properties["lakeversion.revert"] == added
    assert commit.properties["lakeversion.checks"] == "passed: no_null_v"
    assert "lakeversion.recovery" not in commit.properties  # it was checked, not restored
    assert store.diff(result.preview, result.new_head) == []
    assert lake.ids("main") == [1, 2, 3]


def test_merge_into_protected_branch_never_fast_forwards(lake: ServerLake) -> None:
    store = lake.store
    store.create_ref("dev")
    lake.append("dev", "db.t", [4])
    store.protect_branch("main")
    before = lake.head()
    with httpx.Client(base_url=lake.server.api_url) as http:
        dry = http.post("/merge", json={"source": "dev", "target": "main", "dry_run": True})
        assert dry.status_code == 200 and lake.head() == before
        assert dry.json()["fast_forward"] is False
        answer = http.post("/merge", json={"source": "dev", "target": "main",
                                           "fast_forward": True})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["fast_forward"] is False
    assert result["no_ff_reason"].startswith("'main' is protected: a merge into it always")
    assert [d["action"] for d in result["details"]] == ["APPLIED"]
    merge = store.get_commit(lake.head())
    assert merge.parents == (before, lake.head("dev"))
    assert merge.properties["lakeversion.checks"] == "none"  # no checks: said so
    assert store.resolve("main~1").commit_id == before
    assert lake.ids("main") == [1, 2, 3, 4]
    # unprotected, the same request fast-forwards (and says nothing about it)
    store.create_ref("dev2")
    lake.append("dev2", "db.t", [5])
    store.unprotect_branch("main")
    ff = store.merge("dev2", "main")
    assert ff.fast_forward is True and ff.no_ff_reason is None
    assert "no_ff_reason" not in ff.to_dict()


def test_forced_reset_of_protected_branch_only_to_its_published_states(lake: ServerLake) -> None:
    store = lake.store
    first = lake.head()
    store.create_ref("dev")
    lake.append("dev", "db.t", [4])
    store.protect_branch("main")
    merge = store.merge("dev", "main").new_head
    state = State(lake)
    for to in ("dev", lake.head("dev")):  # a source commit: never main's head
        with pytest.raises(ProtectedBranch, match="first-parent history"):
            store.assign_ref("main", to, force=True)
        state.unchanged()
    with pytest.raises(ProtectedBranch, match="resetting it"):
        store.assign_ref("main", "main@{1}")  # not forced: refused as before
    state.unchanged()
    store.assign_ref("main", "main@{1}", force=True)  # undo the merge
    assert lake.head() == first and lake.ids("main") == [1, 2, 3]
    assert store.reflog(store.get_commit(merge).timestamp)[-1].operation == "recovery reset"
    # the merge is no longer on main's chain, so it cannot come back by a reset
    with pytest.raises(ProtectedBranch, match="first-parent history"):
        store.assign_ref("main", merge, force=True)
    assert lake.head() == first


def test_only_heads_the_branch_held_are_published(lake: ServerLake) -> None:
    """A fast-forward made before protection put dev's commits on main's first-parent
    chain, but main never held the intermediate one: it is not published there. Nor is
    what a branch inherited from the branch it was created from."""
    store = lake.store
    store.create_ref("dev")
    lake.append("dev", "db.t", [4])
    passed_over = lake.head("dev")
    lake.append("dev", "db.t", [5])
    assert store.merge("dev", "main").fast_forward  # main is not protected yet
    assert store.resolve("main~1").commit_id == passed_over
    store.protect_branch("main")
    state = State(lake)
    for to in ("main~1", passed_over):
        with pytest.raises(ProtectedBranch, match="one of its past heads"):
            store.rollback_table("main", "db.t", to)
        state.unchanged()
    store.rollback_table("main", "db.t", "main@{1}")  # the head before the fast-forward
    assert lake.ids("main") == [1, 2, 3]
    store.create_ref("release", from_ref="main~1")
    store.protect_branch("release")
    with pytest.raises(ProtectedBranch, match="one of its past heads"):
        store.assign_ref("release", "release~1", force=True)
