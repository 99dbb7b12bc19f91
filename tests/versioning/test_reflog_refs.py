"""`ref@{N}`: the N-th previous head of a branch or tag, from its reflog (git's syntax), on
every backend and the REST client; /api/v1/resolve's typed errors; the read rule."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spark_lakeversion.auth.config import parse_auth_config
from spark_lakeversion.errors import Forbidden, InvalidRefExpression, RefNotFound
from spark_lakeversion.model import Key, Put, RefType
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning.access import AccessControlledStore
from spark_lakeversion.wiring import open_store
from tests.versioning.helpers import table


def heads(store: VersionStore) -> dict[str, str]:
    return {r.name: r.head for r in store.list_refs()}


def test_previous_heads_of_a_branch(store: VersionStore) -> None:
    init = store.get_ref("main").head
    one = store.commit("main", [Put(Key.of("db.t"), table("t", "1"))], message="one").id
    two = store.commit("main", [Put(Key.of("db.t"), table("t", "2"))], message="two").id
    store.assign_ref("main", one)  # a reset is a move too
    assert [store.resolve(f"main@{{{n}}}").commit_id for n in range(4)] == [
        one, two, one, init]
    assert store.resolve("main@{2}~1").commit_id == init
    resolved = store.resolve("main@{0}")
    assert resolved.branch is None  # a past head is read-only, even the current one
    assert store.get_contents("main@{1}", ["db.t"])[Key.of("db.t")].fields["version"] == "2"
    assert [c.id for c in store.log("main@{1}", limit=5).commits] == [two, one, init]
    before = heads(store)
    with pytest.raises(RefNotFound, match=r"has had only 4 head\(s\)"):
        store.resolve("main@{4}")
    with pytest.raises(RefNotFound):
        store.rollback_table("main", "db.t", "main@{9}")
    assert heads(store) == before


def test_a_recreated_branch_has_no_past_of_its_old_life(store: VersionStore) -> None:
    store.create_ref("dev")
    store.commit("dev", [Put(Key.of("db.t"), table("t", "1"))], message="one")
    store.delete_ref("dev", force=True)  # its commit is on no other ref
    fresh = store.create_ref("dev")
    assert store.resolve("dev@{0}").commit_id == fresh.head
    with pytest.raises(RefNotFound, match=r"only 1 head"):
        store.resolve("dev@{1}")
    store.create_ref("v1", RefType.TAG)
    assert store.resolve("v1@{0}").commit_id == fresh.head


@pytest.mark.parametrize("expression", [
    "main@{x}", "main@{-1}", "main@{}", "main@1", "main@{1}#2026-01-01T00:00:00Z",
    "main@{1}x", "main@{1}@{2}", "@{1}", "main@{99999999}", "ma in@{1}"])
def test_malformed_reflog_expressions_are_invalid(store: VersionStore,
                                                   expression: str) -> None:
    with pytest.raises(InvalidRefExpression):
        store.resolve(expression)


def test_a_commit_has_no_previous_heads(store: VersionStore) -> None:
    head = store.get_ref("main").head
    with pytest.raises(RefNotFound, match="a commit has none"):
        store.resolve(f"{head[:12]}@{{0}}")


def test_api_v1_resolve_answers_typed_errors(tmp_path: Path) -> None:
    from spark_lakeversion.server.embedded import start_embedded_server

    with start_embedded_server(f"sqlite:///{tmp_path / 's.db'}",
                               warehouse=str(tmp_path / "wh")) as server, \
            httpx.Client(base_url=server.api_url) as http:
        before = server.store.get_ref("main").head
        server.store.create_ref("dev")
        answer = http.get("/resolve", params={"ref": "main@{0}"})
        assert answer.status_code == 200
        assert answer.json() == {"expression": "main@{0}", "commit_id": before,
                                 "branch": None, "writable": False}
        for ref, status, code in (("main@{1}", 404, "REF_NOT_FOUND"),
                                  ("nope@{0}", 404, "REF_NOT_FOUND"),
                                  ("main@{one}", 400, "INVALID_REF_EXPRESSION")):
            answer = http.get("/resolve", params={"ref": ref})
            assert answer.status_code == status, answer.text
            assert answer.json()["error"]["code"] == code
        answer = http.post("/refs", json={"name": "old", "from": "main@{7}"})
        assert answer.status_code == 404
        assert {r.name for r in server.store.list_refs()} == {"main", "dev"}
        # an Iceberg client's warehouse `main@{0}` is pinned: it would drift as main moves
        config = httpx.get(f"{server.iceberg_uri}/v1/config",
                           params={"warehouse": "main@{0}"})
        assert config.status_code == 200
        assert config.json()["overrides"]["prefix"] == before
        bad = httpx.get(f"{server.iceberg_uri}/v1/config", params={"warehouse": "main@{1}"})
        assert bad.status_code == 400 and "main@{1}" in bad.text


def test_reading_a_past_head_needs_read_on_the_ref(store_url: str) -> None:
    db = open_store(store_url)
    try:
        db.commit("main", [Put(Key.of("db.t"), table("t", "1"))], message="one")
        config = parse_auth_config({"principal": [
            {"name": "etl", "token_sha256": "1" * 64,
             "grants": [{"refs": "main", "allow": ["read"]}]},
            {"name": "nobody", "token_sha256": "3" * 64,
             "grants": [{"refs": "main-*", "allow": ["admin"]}]}]})
        etl, nobody = (AccessControlledStore(db, p) for p in config.principals)
        assert etl.resolve("main@{1}").commit_id == db.resolve("main~1").commit_id
        for expression in ("main@{1}", "main@{99}"):  # refused before it is looked up
            with pytest.raises(Forbidden, match="lacks 'read' on ref 'main'"):
                nobody.resolve(expression)
        with pytest.raises(Forbidden, match="lacks 'read' on ref 'main'"):
            nobody.get_contents("main@{0}", ["db.t"])
    finally:
        db.close()
