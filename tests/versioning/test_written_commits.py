"""Commits this store wrote are served from its cache afterwards (the next commit's parent
needs no query): what it serves must be exactly what another process reads back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.model import Key, Put, RefType
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.wiring import open_store
from tests.helpers import make_store_url
from tests.versioning.helpers import table


@pytest.fixture(params=["sqlite-file", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return make_store_url(request.param, tmp_path)


@pytest.fixture
def writer(url: str) -> Iterator[VersionStore]:
    store = open_store(url)
    yield store
    store.close()


def _fresh_read(url: str, commit_id: str) -> object:
    other = open_store(url)  # another process's view: nothing cached
    try:
        return other.get_commit(commit_id), other.log(commit_id)
    finally:
        other.close()


def test_written_commits_read_back_as_stored(url: str, writer: VersionStore) -> None:
    first = writer.commit("main", [Put(Key.of("db.a"), table("a", "1"))], message="one",
                          properties={"k": "v"})
    writer.create_ref("dev", RefType.BRANCH, "main")
    writer.commit("dev", [Put(Key.of("db.b"), table("b", "1"))], message="on dev")
    second = writer.commit("main", [Put(Key.of("db.a"), table("a", "2"))], message="two")
    merged = writer.merge("dev", "main")
    assert merged.new_head is not None and not merged.fast_forward
    for commit_id in (first.id, second.id, merged.new_head):
        assert (writer.get_commit(commit_id), writer.log(commit_id)) == \
            _fresh_read(url, commit_id)
    assert writer.get_commit(second.id).parents == (first.id,)

