"""Spark SQL on Delta tables, with the stock Iceberg runtime and no Delta jar: the
catalog serves each Delta table as Iceberg metadata, at every ref."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_lakeversion.api import connect
from tests.formats.delta.helpers import ID_P_V_ARROW, data
from tests.spark.helpers import SparkLake

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_spark_selects_a_delta_table_on_branches_tags_and_history(lake: SparkLake,
                                                                  tmp_path: Path) -> None:
    with connect(lake.server.url, warehouse=str(tmp_path / "wh")) as catalog:
        events = catalog.branch("main").delta("db.events")
        events.create(ID_P_V_ARROW, partition_by=["p"])
        events.append(data((1, "a", 10), (2, "b", 20)))
        catalog.tag("v1").create("main")
        catalog.branch("dev").create("main")
        dev = catalog.branch("dev").delta("db.events")
        dev.append(data((3, "a", 30)))
        dev.delete("id = 1")
        plain = catalog.branch("dev").delta("db.plain")
        plain.create(ID_P_V_ARROW)
        plain.append(data((9, "z", 90)))
    assert lake.rows("SELECT id, p, v FROM {lv}.db@dev.events ORDER BY id") == \
        [(2, "b", 20), (3, "a", 30)]
    assert lake.ids("db.events") == [1, 2]
    assert lake.ids("db@v1.events") == [1, 2]
    assert lake.ids("`db@dev~3`.events") == [1, 2, 3]  # before the delete
    assert lake.rows("SELECT id, p, v FROM {lv}.db@dev.plain") == [(9, "z", 90)]
    # a filter on the partition column reads that partition's values from the manifests
    assert lake.rows("SELECT id FROM {lv}.db@dev.events WHERE p = 'a'") == [(3,)]
    names = {r.tableName for r in lake.rows("SHOW TABLES IN {lv}.db@dev")}
    assert names == {"events", "plain"}
