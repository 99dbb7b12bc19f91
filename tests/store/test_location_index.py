"""The store's location -> table-id index and the name rules of new keys, on every SQL backend
(the HTTP client has no index: its server checks on commit, see tests/server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from spark_lakeversion.errors import ConflictError, InvalidKey
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.model import Content, Delete, Key, Put
from spark_lakeversion.store.sql import schema as sql_store
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning import commits as commits_module
from spark_lakeversion.wiring import open_store
from tests.helpers import make_store_url
from tests.store.helpers import snapshot_of_store


@pytest.fixture
def db(store: VersionStore) -> VersionStore:
    """The suite's `store` fixture, on every SQL backend."""
    return store


def delta(table_id: str, location: str) -> Content:
    return Content(DELTA_TABLE, table_id, {"location": location, "version": 1})


def test_owner_finds_equal_containing_and_contained_locations(db: VersionStore) -> None:
    db.commit("main", [Put(Key.of("db.a"), delta("A", "file:///w/db/a")),
                       Put(Key.of("db.s3"), delta("S", "s3a://bucket/lake/s"))], message="m")
    db.create_ref("dev")
    db.commit("dev", [Delete(Key.of("db.a"))], message="dropped on dev only")
    owner = ("A", "file:///w/db/a")
    assert db.location_owner("file:///w/db/a", "B") == owner
    assert db.location_owner("file:/w/db/a/", "B") == owner  # one canonical spelling
    assert db.location_owner("file:///w/db/a/data/x", "B") == owner  # inside A
    assert db.location_owner("file:///w/db", "B") == owner  # contains A
    assert db.location_owner("file:///", "B") == owner
    assert db.location_owner("s3://bucket/lake", "B") == ("S", "s3://bucket/lake/s")
    assert db.location_owner("file:///w/db/a", "A") is None  # the table itself
    for free in ["file:///w/db/ab", "file:///w/db/b", "file:///w/d", "s3://bucket/lak",
                 "s3://other/lake/s"]:
        assert db.location_owner(free, "B") is None, free


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"])  # they can be reopened
def test_old_contents_are_indexed_when_an_old_store_is_opened(backend: str,
                                                              tmp_path: Path) -> None:
    sql_url = make_store_url(backend, tmp_path)
    s = open_store(sql_url)
    s.commit("main", [Put(Key.of("db.a"), delta("A", "file:///w/a"))], message="m")
    with s.storage.db.engine.begin() as conn:  # type: ignore[attr-defined]
        # as a store written before the index existed: no rows, no "backfilled" mark
        conn.execute(sql_store.locations_table.delete())
        conn.execute(sql_store.meta_table.delete().where(
            sql_store.meta_table.c.key == "location_index_backfilled"))
    s.close()
    s = open_store(sql_url)
    try:
        assert s.location_owner("file:///w/a/x", "B") == ("A", "file:///w/a")
        with s.storage.db.engine.connect() as conn:  # type: ignore[attr-defined]
            assert conn.execute(sa.select(sa.func.count()).select_from(
                sql_store.locations_table)).scalar() == 1
    finally:
        s.close()


@pytest.mark.parametrize("name", ["a/b", "a?b", "a#b", "50%", "..", ".", "a\\b"])
def test_new_keys_must_be_safe_names_and_nothing_is_written(db: VersionStore,
                                                            name: str) -> None:
    before = snapshot_of_store(db)
    with pytest.raises(InvalidKey, match="key element"):
        db.commit("main", [Put(Key(("db", name)), delta("X", "file:///w/x"))], message="m")
    assert snapshot_of_store(db) == before


def test_keys_stored_before_the_rules_stay_readable_and_deletable(
        db: VersionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    old = Key(("db", "a?b"))
    with monkeypatch.context() as m:  # an old store: the key was written without the rule
        m.setattr(commits_module, "check_new_key", lambda *a, **k: None)
        db.commit("main", [Put(old, delta("X", "file:///w/x"))], message="old")
    assert db.get_content("main", old) == delta("X", "file:///w/x")
    assert [k for k, _ in db.list_keys("main")] == [old]
    with pytest.raises(InvalidKey):
        db.commit("main", [Put(old, delta("X", "file:///w/x2"))], message="rewrite")
    db.commit("main", [Delete(old), Put(Key.of("db.ab"), delta("X", "file:///w/x"))],
              message="rename to a safe name")
    assert [k for k, _ in db.list_keys("main")] == [Key.of("db.ab")]


def test_the_commit_itself_refuses_a_second_table_at_a_taken_location(db: VersionStore) -> None:
    """Two creates that both passed the catalog's check (a race, or a client bypassing it)
    cannot both land: the store checks new index rows inside the commit's transaction."""
    db.create_ref("dev")
    db.commit("main", [Put(Key.of("db.a"), delta("A", "file:///w/db/a"))], message="A")
    before = snapshot_of_store(db)
    for location in ["file:///w/db/a", "file:///w/db/a/inner", "file:///w/db"]:
        with pytest.raises(ConflictError, match="overlaps the location of another table"):
            db.commit("dev", [Put(Key.of("db.b"), delta("B", location))], message="B")
    assert snapshot_of_store(db) == before
    # the table itself moves freely, and a sibling location is free
    db.commit("main", [Put(Key.of("db.a"), delta("A", "file:///w/db/a2"))], message="A moves")
    db.commit("dev", [Put(Key.of("db.b"), delta("B", "file:///w/db/b"))], message="B")
    assert db.location_owner("file:///w/db/b", "X") == ("B", "file:///w/db/b")
