"""Iceberg views through Spark SQL on branches: `CREATE VIEW {lv}.db@dev.v` lives on dev
until a merge brings it to main; both sides replacing it differently is a conflict."""

from __future__ import annotations

import httpx
import pytest

from spark_lakeversion.errors import ConflictError, ReadOnlyRef
from tests.spark.helpers import SparkLake, register_catalog

pytestmark = pytest.mark.spark


def view_names(lake: SparkLake, namespace: str) -> list[str]:
    """The catalog's views (SHOW VIEWS also lists the shared session's temporary views)."""
    return sorted(r.viewName for r in lake.rows(f"SHOW VIEWS IN {{lv}}.{namespace}")
                  if not r.isTemporary)


def test_view_on_dev_is_visible_on_main_only_after_merge(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    orders.sql("CREATE VIEW {lv}.db@dev.big AS SELECT id, v FROM {lv}.db.t WHERE id > 1")
    assert [tuple(r) for r in orders.rows("SELECT * FROM {lv}.db@dev.big")] == [(2, "b")]
    assert view_names(orders, "db@dev") == ["big"]
    assert view_names(orders, "db") == []
    with pytest.raises(Exception, match="TABLE_OR_VIEW_NOT_FOUND"):
        orders.rows("SELECT * FROM {lv}.db.big")
    orders.sql("MERGE BRANCH dev INTO main")
    assert [tuple(r) for r in orders.rows("SELECT * FROM {lv}.db.big")] == [(2, "b")]
    assert view_names(orders, "db") == ["big"]
    # the view is no table: table listings and table loads do not see it
    assert [r.tableName for r in orders.rows("SHOW TABLES IN {lv}.db")] == ["t"]


def test_replace_on_both_branches_conflicts_and_one_side_fast_forwards(orders: SparkLake) -> None:
    orders.sql("CREATE VIEW {lv}.db.v AS SELECT id FROM {lv}.db.t")
    orders.sql("CREATE BRANCH dev")
    orders.sql("CREATE OR REPLACE VIEW {lv}.db@dev.v AS SELECT id FROM {lv}.db.t WHERE id = 1")
    # only dev changed it: the merge takes dev's version
    orders.sql("CREATE BRANCH dev2")
    orders.sql("MERGE BRANCH dev INTO main")
    assert [r.id for r in orders.rows("SELECT * FROM {lv}.db.v")] == [1]
    # dev2 still has the old version; replacing it there too is a conflict on merge
    assert sorted(r.id for r in orders.rows("SELECT * FROM {lv}.db@dev2.v")) == [1, 2]
    orders.sql("CREATE OR REPLACE VIEW {lv}.db@dev2.v AS SELECT id FROM {lv}.db.t WHERE id = 2")
    with pytest.raises(ConflictError) as caught:
        orders.sql("MERGE BRANCH dev2 INTO main")
    assert "view db.v was changed on both sides" in str(caught.value)
    assert [r.id for r in orders.rows("SELECT * FROM {lv}.db.v")] == [1]


def test_drop_and_rename_view_stay_on_their_branch(orders: SparkLake) -> None:
    orders.sql("CREATE VIEW {lv}.db.v AS SELECT id FROM {lv}.db.t")
    orders.sql("CREATE BRANCH dev")
    orders.sql("ALTER VIEW {lv}.db@dev.v RENAME TO db@dev.w")
    assert view_names(orders, "db@dev") == ["w"]
    orders.sql("DROP VIEW {lv}.db@dev.w")
    assert view_names(orders, "db@dev") == []
    assert view_names(orders, "db") == ["v"]
    log = httpx.get(orders.server.api_url + "/log", params={"ref": "dev"}).json()["commits"]
    assert [c["message"].split(" ")[0:2] for c in log[:2]] == [["drop", "view"],
                                                               ["rename", "view"]]


def test_view_over_a_branch_table_and_two_part_names(orders: SparkLake) -> None:
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (3, 'c')")
    # the view's SQL names dev's table: it reads dev's rows from any ref
    orders.sql("CREATE VIEW {lv}.db@dev.all_ids AS SELECT id FROM {lv}.db@dev.t")
    assert sorted(r.id for r in orders.rows("SELECT * FROM {lv}.db@dev.all_ids")) == [1, 2, 3]
    sql = orders.rows("SHOW CREATE TABLE {lv}.db@dev.all_ids")[0][0]
    assert "db@dev" in sql
    # two-part `db@ref.view` names go to spark.lakeversion.catalog, as for tables
    assert sorted(r.id for r in orders.rows("SELECT * FROM db@dev.all_ids")) == [1, 2, 3]
    orders.sql("CREATE VIEW db@dev.two AS SELECT 7 AS id")
    assert [r.id for r in orders.rows("SELECT * FROM {lv}.db@dev.two")] == [7]


def test_views_on_a_tag_are_read_only(orders: SparkLake) -> None:
    orders.sql("CREATE VIEW {lv}.db.v AS SELECT id FROM {lv}.db.t")
    orders.sql("CREATE TAG v1")
    assert sorted(r.id for r in orders.rows("SELECT * FROM {lv}.db@v1.v")) == [1, 2]
    with pytest.raises(ReadOnlyRef):
        orders.sql("CREATE VIEW {lv}.db@v1.other AS SELECT 1 AS id")
    with pytest.raises(ReadOnlyRef):
        orders.sql("DROP VIEW {lv}.db@v1.v")
    assert view_names(orders, "db@v1") == ["v"]


def test_spark_pages_through_listings(orders: SparkLake) -> None:
    for name in ("a", "b", "c"):
        orders.sql(f"CREATE TABLE {{lv}}.db.{name} (id INT) USING iceberg")
        orders.sql(f"CREATE VIEW {{lv}}.db.v{name} AS SELECT 1 AS id")
    paged = orders.catalog + "_paged"
    register_catalog(orders.spark, paged, orders.server.url, **{"rest-page-size": "1"})
    try:
        tables = sorted(r.tableName for r in orders.spark.sql(
            f"SHOW TABLES IN {paged}.db").collect())
        views = sorted(r.viewName for r in orders.spark.sql(
            f"SHOW VIEWS IN {paged}.db").collect() if not r.isTemporary)
    finally:
        orders.spark.conf.set("spark.lakeversion.catalog", orders.catalog)
    assert tables == ["a", "b", "c", "t"]
    assert views == ["va", "vb", "vc"]
