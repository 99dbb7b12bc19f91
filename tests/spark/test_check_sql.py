"""Check authoring from Spark SQL (issue 25): `ADD CHECK`, `DROP CHECK` and `SHOW CHECKS` go
through the server's `/api/v1/checks` as the CLI does, so a check is validated before it is
stored (its SQL parses, reads only preview/target/source, runs once on the branch), needs
`admin` on the branch, and every refusal is a typed error that stores nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.errors import (
    ChecksFailed,
    Forbidden,
    InvalidInput,
    NotFound,
    RefNotFound,
)
from spark_lakeversion.server.embedded import start_embedded_server
from tests.server.access_helpers import write_auth_config
from tests.spark.helpers import SparkLake, register_catalog

pytestmark = pytest.mark.spark

UNIQUE_IDS = "SELECT id, count(*) AS n FROM db.t GROUP BY id HAVING count(*) > 1"


def test_an_added_check_gates_merges_until_it_is_dropped(orders: SparkLake) -> None:
    store = orders.server.store
    [added] = orders.rows(f"ADD CHECK unique_ids ON BRANCH main AS '{UNIQUE_IDS}' "
                          "TIMEOUT '2m' TABLES db.t, db.u ALLOW MISSING")
    assert (added.branch, added.name, added.kind, added.spec) == (
        "main", "unique_ids", "sql", UNIQUE_IDS)
    [shown] = orders.rows("SHOW CHECKS ON BRANCH main")
    assert (shown.name, shown.kind, shown.spec, json.loads(shown.tables), shown.timeout_s) == (
        "unique_ids", "sql", UNIQUE_IDS, ["db.t", "db.u"], 120.0)
    assert [c.timeout_s for c in store.list_checks("main")] == [120.0]

    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (2, 'dup')")
    head = store.get_ref("main").head
    with pytest.raises(ChecksFailed, match="failed unique_ids: violations=1"):
        orders.sql("MERGE BRANCH dev INTO main")
    assert store.get_ref("main").head == head
    assert orders.ids("db.t") == [1, 2]

    [dropped] = orders.rows("DROP CHECK unique_ids ON BRANCH main")
    assert (dropped.branch, dropped.name, dropped.dropped) == ("main", "unique_ids", True)
    assert orders.rows("SHOW CHECKS") == [] and store.list_checks() == []
    with pytest.raises(NotFound, match="branch 'main' has no check named 'unique_ids'"):
        orders.sql("DROP CHECK unique_ids ON BRANCH main")
    [again] = orders.rows("DROP CHECK IF EXISTS unique_ids ON BRANCH main")
    assert again.dropped is False
    orders.sql("MERGE BRANCH dev INTO main")
    assert orders.ids("db.t") == [1, 2, 2]


def test_default_timeout_and_no_tables(orders: SparkLake) -> None:
    orders.sql("ADD CHECK no_null_v ON BRANCH main AS 'SELECT * FROM db.t WHERE v IS NULL'")
    [shown] = orders.rows("SHOW CHECKS")
    assert (shown.branch, json.loads(shown.tables), shown.timeout_s) == ("main", [], 60.0)


@pytest.mark.parametrize(("spec", "fragment"), [
    ("SELEC * FRM t WHERE", 'syntax error at or near "SELEC"'),
    ("SELECT * FROM db@other.t", 'syntax error at or near "@"'),
    ('SELECT * FROM "db@other".t', "db@other.t names another ref"),
    ("SELECT * FROM other.db.t", "names the catalog 'other'"),
    ("SELECT id FROM db.tt WHERE id < 0", "reads db.tt, which no ref has"),
])
def test_a_refused_check_shows_the_users_sql_and_stores_nothing(
        orders: SparkLake, spec: str, fragment: str) -> None:
    store = orders.server.store
    head = store.get_ref("main").head
    with pytest.raises(InvalidInput) as caught:
        orders.sql(f"ADD CHECK broken ON BRANCH main AS '{spec}'")
    message = caught.value.message
    assert fragment in message and f"in: {spec}" in message
    assert "__lakeversion" not in message  # never our wrapper SQL
    assert store.list_checks() == [] and orders.rows("SHOW CHECKS") == []
    assert store.get_ref("main").head == head


def test_allow_missing_accepts_a_table_still_to_come(orders: SparkLake) -> None:
    orders.sql("ADD CHECK later ON BRANCH main AS 'SELECT id FROM db.tt WHERE id < 0' "
               "ALLOW MISSING")
    assert [c.name for c in orders.server.store.list_checks("main")] == ["later"]


@pytest.mark.parametrize(("statement", "error", "fragment"), [
    ("ADD CHECK c ON BRANCH main AS 'SELECT 1 WHERE false' TIMEOUT '0s'", InvalidInput,
     "check timeout must be within"),
    ("ADD CHECK c ON BRANCH nosuch AS 'SELECT 1 WHERE false'", RefNotFound, "'nosuch'"),
    ("ADD CHECK 'bad name!' ON BRANCH main AS 'SELECT 1 WHERE false'", InvalidInput,
     "check name 'bad name!'"),
    ("DROP CHECK c ON BRANCH nosuch", RefNotFound, "'nosuch'"),
])
def test_the_servers_refusals_are_typed(orders: SparkLake, statement: str,
                                        error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        orders.sql(statement)
    assert orders.server.store.list_checks() == []


@pytest.mark.slow
def test_check_statements_need_admin_on_the_branch(spark: Any, tmp_path: Path) -> None:
    tokens = write_auth_config(tmp_path / "auth.toml")
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "auth.toml")) as srv:
        names = {who: f"lv_{who}_{uuid.uuid4().hex[:6]}" for who in tokens}

        def sql(who: str, text: str) -> list[Any]:
            register_catalog(spark, names[who], srv.url, token=tokens[who])
            rows: list[Any] = spark.sql(text.replace("{lv}", names[who])).collect()
            return rows

        add = "ADD CHECK c ON BRANCH main AS 'SELECT 1 WHERE false'"
        try:
            with pytest.raises(Forbidden, match="principal 'etl' lacks 'admin' on ref 'main'"):
                sql("etl", add)
            assert srv.store.list_checks() == []
            sql("admin", add)
            with pytest.raises(Forbidden, match="principal 'etl' lacks 'admin' on ref 'main'"):
                sql("etl", "DROP CHECK c ON BRANCH main")
            assert [c.name for c in srv.store.list_checks()] == ["c"]
            assert [r.name for r in sql("etl", "SHOW CHECKS ON BRANCH main")] == ["c"]
            with pytest.raises(Forbidden, match="principal 'nobody' lacks 'read'"):
                sql("nobody", "SHOW CHECKS ON BRANCH main")
            sql("admin", "DROP CHECK c ON BRANCH main")
            assert srv.store.list_checks() == []
        finally:
            spark.conf.unset("spark.lakeversion.catalog")
