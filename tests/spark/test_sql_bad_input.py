"""Bad input through Spark SQL: a typed error carrying our message, and nothing written."""

from __future__ import annotations

import pytest

from spark_lakeversion.errors import (
    AlreadyExists,
    CommitNotFound,
    InvalidInput,
    InvalidName,
    KeyNotFound,
    LakeVersionError,
    ReadOnlyRef,
    RefNotFound,
)
from tests.spark.helpers import SparkLake

CASES: list[tuple[str, type[LakeVersionError], str]] = [
    ("CREATE BRANCH `bad name`", InvalidName, "not allowed"),
    ("CREATE BRANCH a..b", InvalidName, "'..' is not allowed"),
    ("CREATE TAG v1", AlreadyExists, "already exists"),
    ("CREATE BRANCH x FROM main~99", RefNotFound, "past the first commit"),
    ("MERGE BRANCH nope INTO main", RefNotFound, "'nope'"),
    ("MERGE BRANCH main INTO v1", ReadOnlyRef, "read-only"),
    ("MERGE BRANCH main INTO main USING STRATEGY sideways", InvalidInput, "strategy"),
    ("SHOW LOG LIMIT -1", InvalidInput, "LIMIT"),
    ("SHOW DIFF FROM main TO nope", RefNotFound, "'nope'"),
    ("ROLLBACK TABLE db.nope TO main", KeyNotFound, "db.nope"),
    ("REVERT COMMIT deadbeefdeadbeef", CommitNotFound, "deadbeefdeadbeef"),
    ("USE BRANCH nope", RefNotFound, "'nope'"),
    ("INSERT INTO {lv}.db@v1.t VALUES (9, 'x')", ReadOnlyRef, "read-only"),
    ("SELECT * FROM {lv}.db@nope.t", RefNotFound, "'nope'"),
    ("SELECT * FROM {lv}.db@main~x.t", InvalidInput, "number of ancestors"),
    ("SELECT * FROM {lv}.`db@main#yesterday`.t", InvalidInput, "ISO-8601"),
]


@pytest.mark.parametrize(("statement", "error", "says"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_sql_is_a_typed_error_and_writes_nothing(
        orders: SparkLake, statement: str, error: type[LakeVersionError], says: str) -> None:
    orders.sql("CREATE TAG v1")
    store = orders.server.store
    refs = store.list_refs()
    log = store.log("main").commits
    with pytest.raises(error, match=says):
        orders.sql(statement).collect()
    assert store.list_refs() == refs
    assert store.log("main").commits == log
    assert orders.ids("db.t") == [1, 2]
