"""`lakeversion bench spark`: Spark writes through `lv` on a branch vs an Iceberg hadoop catalog.

One SparkSession runs both: N single-row INSERTs plus a SELECT through the lakeversion
catalog on a branch (`db@bench.t`), and the same through Iceberg's own hadoop catalog on
local files. Rounds alternate so background load hits both alike; the figure is the ratio
of median round times (target <= 1.10). Session start time is measured in fresh
interpreters, with Iceberg's extension alone and with ours added.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.10

_START_SCRIPT = """
import sys, time
t0 = time.perf_counter()
from pyspark.sql import SparkSession
b = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
     .config("spark.jars", sys.argv[1]).config("spark.sql.extensions", sys.argv[2]))
spark = b.getOrCreate()
spark.sql("SELECT 1").collect()
print(time.perf_counter() - t0)
spark.stop()
"""


def _session_start_seconds(jars: str, extensions: str) -> float:
    out = subprocess.run([sys.executable, "-c", _START_SCRIPT, jars, extensions],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _round(spark: Any, table: str, inserts: int, start_id: int) -> float:
    t0 = time.perf_counter()
    for i in range(start_id, start_id + inserts):
        spark.sql(f"INSERT INTO {table} VALUES ({i}, 'row {i}')")
    spark.sql(f"SELECT count(*), max(id) FROM {table}").collect()
    return time.perf_counter() - t0


def run(inserts: int = 20, rounds: int = 3, start_time: bool = True,
        **_options: Any) -> dict[str, Any]:
    """Measure and return the figures as one JSON-ready dict."""
    from spark_lakeversion.server.embedded import start_embedded_server
    from spark_lakeversion.spark import ICEBERG_EXTENSION, SHIM_EXTENSION, session
    from spark_lakeversion.spark.build import ensure_shim_jar
    from spark_lakeversion.spark.jars import find_iceberg_runtime_jar

    tmp = Path(tempfile.mkdtemp(prefix="lv-bench-spark-"))
    try:
        server = start_embedded_server(f"sqlite:///{tmp / 'store.db'}", str(tmp / "lv-warehouse"),
                                       stop_at_exit=True)
        t0 = time.perf_counter()
        settings: dict[str, Any] = {
            "spark.master": "local[2]", "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false", "spark.sql.shuffle.partitions": "1",
            "spark.sql.catalog.hadoop": "org.apache.iceberg.spark.SparkCatalog",
            "spark.sql.catalog.hadoop.type": "hadoop",
            "spark.sql.catalog.hadoop.warehouse": str(tmp / "hadoop-warehouse"),
        }
        spark = session(branch="main", server=server.url, **settings)
        spark.sparkContext.setLogLevel("ERROR")
        spark.sql("SELECT 1").collect()
        in_process_start = time.perf_counter() - t0
        for catalog in ("lv", "hadoop"):
            spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {catalog}.db")
            spark.sql(f"CREATE TABLE {catalog}.db.t (id INT, v STRING) USING iceberg")
        spark.sql("CREATE BRANCH bench")
        tables = {"lv": "lv.db@bench.t", "hadoop": "hadoop.db.t"}
        for table in tables.values():  # warm-up: class loading, first plans
            _round(spark, table, 2, 1_000_000)
        times: dict[str, list[float]] = {"lv": [], "hadoop": []}
        for r in range(rounds):
            order = ("lv", "hadoop") if r % 2 == 0 else ("hadoop", "lv")
            for name in order:
                times[name].append(_round(spark, tables[name], inserts, r * inserts))
        main_rows = spark.sql("SELECT count(*) AS n FROM lv.db.t").collect()[0].n
        spark.stop()
        server.stop()
        lv = statistics.median(times["lv"])
        hadoop = statistics.median(times["hadoop"])
        figures: dict[str, Any] = {
            "benchmark": "spark",
            "inserts_per_round": inserts,
            "rounds": rounds,
            "lv_branch_round_s": round(lv, 3),
            "hadoop_round_s": round(hadoop, 3),
            "lv_ms_per_insert": round(1000 * lv / inserts, 1),
            "hadoop_ms_per_insert": round(1000 * hadoop / inserts, 1),
            "ratio": round(lv / hadoop, 3),
            "target_ratio": TARGET_RATIO,
            "meets_target": lv / hadoop <= TARGET_RATIO,
            "main_untouched": main_rows == 0,
            "session_start_with_embedded_server_s": round(in_process_start, 2),
        }
        if start_time:
            iceberg = str(find_iceberg_runtime_jar())
            shim = str(ensure_shim_jar())
            without = _session_start_seconds(iceberg, ICEBERG_EXTENSION)
            with_ours = _session_start_seconds(f"{iceberg},{shim}",
                                               f"{ICEBERG_EXTENSION},{SHIM_EXTENSION}")
            figures["session_start_iceberg_only_s"] = round(without, 2)
            figures["session_start_with_lakeversion_s"] = round(with_ours, 2)
        return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
