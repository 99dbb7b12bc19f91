"""Row-level merge run in the caller's Spark session (issue 23, "Scale"): past the server's
row limit the server only plans, Spark runs the rule's SQL and writes the merged rows with
Iceberg's writer under a staging directory the server issued, and the server checks those
files and commits one merge snapshot through the usual merge."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.limits import Limits
from spark_lakeversion.server.embedded import start_embedded_server
from tests.spark.helpers import SparkLake, register_catalog

MODES = {
    "copy-on-write": "'write.delete.mode'='copy-on-write', 'write.update.mode'='copy-on-write'",
    "merge-on-read": "'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read'",
}
BASE = [(i, f"v{i}", i) for i in range(1, 9)]


@pytest.fixture
def small(spark: Any, tmp_path: Path) -> Iterator[SparkLake]:
    """A server whose row merges never run in it (a 1-byte row limit)."""
    server = start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "wh"),
                                   limits=Limits(max_row_merge_bytes=1))
    name = f"lv_{uuid.uuid4().hex[:8]}"
    register_catalog(spark, name, server.url)
    try:
        yield SparkLake(spark, server, name)
    finally:
        spark.conf.unset("spark.lakeversion.catalog")
        server.stop()


def table(lake: SparkLake, mode: str, keyed: bool) -> SparkLake:
    lake.sql("CREATE NAMESPACE {lv}.db")
    lake.sql("CREATE TABLE {lv}.db.t (id INT NOT NULL, v STRING, n INT) USING iceberg "
             f"TBLPROPERTIES ('format-version'='2', {MODES[mode]})")
    if keyed:
        lake.sql("ALTER TABLE {lv}.db.t SET IDENTIFIER FIELDS id")
    values = ", ".join(f"({i}, '{v}', {n})" for i, v, n in BASE)
    lake.sql(f"INSERT INTO {{lv}}.db.t VALUES {values}")
    lake.sql("CREATE BRANCH dev")
    return lake


def engine_merge(lake: SparkLake, **args: Any) -> dict[str, Any]:
    jvm = lake.spark._jvm
    text = jvm.io.lakeversion.spark.RowEngine.merge(
        lake.spark._jsparkSession, lake.catalog,
        json.dumps({"source": "dev", "target": "main", **args}))
    return dict(json.loads(text))


def test_two_updates_of_one_file_merge_on_spark(small: SparkLake) -> None:
    lake = table(small, "copy-on-write", True)
    lake.sql("UPDATE {lv}.`db@dev`.t SET v = 'dev' WHERE id = 2")
    lake.sql("UPDATE {lv}.db.t SET n = 70 WHERE id = 7")
    result = engine_merge(lake)
    print(json.dumps(result, indent=1)[:3000])
    rows = sorted(tuple(r) for r in lake.rows("SELECT id, v, n FROM {lv}.db.t"))
    want = sorted({**{r[0]: r for r in BASE}, 2: (2, "dev", 2), 7: (7, "v7", 70)}.values())
    assert rows == want


def test_timing_debug(small: SparkLake) -> None:
    import time
    lake = table(small, "copy-on-write", True)
    lake.sql("UPDATE {lv}.`db@dev`.t SET v = 'dev' WHERE id = 2")
    lake.sql("UPDATE {lv}.db.t SET n = 70 WHERE id = 7")
    from spark_lakeversion.versioning.options import MergeOptions
    res = lake.server.store.merge("dev", "main", MergeOptions(dry_run=True, plan_only=True, plan_rows=True))
    plan = res.details[0].statistics["row_merge"]["plan"]
    jvm = lake.spark._jvm
    cat = lake.spark._jsparkSession.sessionState().catalogManager().catalog(lake.catalog)
    import os
    for kv in os.environ.get("DBG_CONF", "").split(","):
        if kv:
            k, v = kv.split("=")
            lake.spark.conf.set(k, v)
    for scan in plan["scans"]:
        t = time.time()
        jvm.io.lakeversion.spark.RowEngine.stageForDebug(lake.spark._jsparkSession, lake.catalog, json.dumps(scan))
        print("stage", time.time() - t)
    for st in plan["statements"]:
        if st.startswith("CACHE TABLE") and "step_merged" in st:
            sel = st[st.index(" AS ") + 4:]
            df = lake.spark.sql(sel)
            t = time.time(); df._jdf.queryExecution().analyzed(); print("analyzed", time.time() - t)
            t = time.time(); df._jdf.queryExecution().optimizedPlan(); print("optimized", time.time() - t)
            t = time.time(); df._jdf.queryExecution().executedPlan(); print("physical", time.time() - t)
            t = time.time(); df.collect(); print("collect", time.time() - t)
            t = time.time(); df.collect(); print("collect2", time.time() - t)
        t = time.time()
        lake.spark.sql(st)
        print(round(time.time() - t, 2), st[:80], len(st))
    for q in ("conflict_count", "files"):
        t = time.time()
        lake.spark.sql(plan[q]).collect()
        print(q, round(time.time() - t, 2))
    t = time.time()
    lake.spark.sql(plan["rows"]).collect()
    print("rows", round(time.time() - t, 2))
