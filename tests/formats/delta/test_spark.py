"""Spark has no Delta integration here (no Delta Spark jar is reachable): reading a Delta
table through our Iceberg REST catalog fails with the clear message, not a trace."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.api import connect
from spark_lakeversion.server.embedded import start_embedded_server
from tests.formats.delta.helpers import ID_P_V_ARROW, data

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_spark_reading_a_delta_table_gets_the_clear_error(spark: Any, tmp_path: Path) -> None:
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "warehouse")) as srv:
        with connect(srv.url, warehouse=str(tmp_path / "warehouse")) as catalog:
            events = catalog.branch("main").delta("db.events")
            events.create(ID_P_V_ARROW)
            events.append(data((1, "a", 1)))
        name = f"ice_{uuid.uuid4().hex[:8]}"
        conf = f"spark.sql.catalog.{name}"
        spark.conf.set(conf, "org.apache.iceberg.spark.SparkCatalog")
        spark.conf.set(f"{conf}.type", "rest")
        spark.conf.set(f"{conf}.uri", srv.iceberg_uri)
        spark.conf.set(f"{conf}.cache-enabled", "false")
        assert spark.sql(f"SHOW TABLES IN {name}.db").collect() == []
        with pytest.raises(Exception) as caught:
            spark.sql(f"SELECT * FROM {name}.db.events").collect()
        assert ("db.events is a Delta table: read it with spark_lakeversion's Delta API"
                in str(caught.value))
