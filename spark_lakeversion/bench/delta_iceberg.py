"""The Iceberg facade of Delta tables, measured (part of `lakeversion bench delta`):
- a `files`-file Delta table's Iceberg metadata: first load (generated from the log) and
  cached load, and after one append the log files that load read (the new version's only);
- one Spark INSERT into a Delta table through the catalog against one into an Iceberg table
  of the same size, on the same branch, in the same run (target <= 1.3x).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_lakeversion.api import connect
from spark_lakeversion.formats.delta.iceberg import translate

TARGET_RATIO = 1.3


def _write_log(root: Path, version: int, actions: list[dict[str, Any]]) -> None:
    log = root / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    info = {"commitInfo": {"timestamp": 1_700_000_000_000 + version, "operation": "WRITE"}}
    (log / f"{version:020d}.json").write_text(
        "".join(json.dumps(a) + "\n" for a in [info, *actions]))


def _big_log(root: Path, files: int, versions: int = 10) -> None:
    """A Delta log naming `files` files over `versions` appends (written directly: the
    metadata load reads no data file)."""
    schema = {"type": "struct", "fields": [
        {"name": "id", "type": "long", "nullable": True, "metadata": {}},
        {"name": "p", "type": "string", "nullable": True, "metadata": {}}]}
    _write_log(root, 0, [{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
                         {"metaData": {"id": str(uuid.uuid4()),
                                       "format": {"provider": "parquet", "options": {}},
                                       "schemaString": json.dumps(schema),
                                       "partitionColumns": ["p"], "configuration": {},
                                       "createdTime": 0}}])
    per = max(1, files // versions)
    done = 0
    version = 1
    while done < files:
        n = min(per, files - done)
        _write_log(root, version, [{"add": {
            "path": f"p=k{i % 16}/f-{version}-{i}.parquet", "partitionValues": {"p": f"k{i % 16}"},
            "size": 1000, "modificationTime": 0, "dataChange": True,
            "stats": json.dumps({"numRecords": 10, "minValues": {"id": i},
                                 "maxValues": {"id": i + 9}, "nullCount": {"id": 0}})}}
            for i in range(done, done + n)])
        done += n
        version += 1


def metadata_figures(files: int = 10_000) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="lakeversion-bench-facade-"))
    root = tmp / "warehouse" / "ext" / "big"
    _big_log(root, files)
    with connect(f"sqlite:///{tmp / 'store.db'}", warehouse=str(tmp / "warehouse")) as catalog:
        handle = catalog.branch("main").delta("bench.big")
        handle.register(str(root))
        state = handle.state()
        reads = translate.COUNTERS.log_files_read
        t0 = time.perf_counter()
        translate.load(state)
        first = time.perf_counter() - t0
        first_reads = translate.COUNTERS.log_files_read - reads
        t0 = time.perf_counter()
        translate.load(state)
        cached = time.perf_counter() - t0
        cached_reads = translate.COUNTERS.log_files_read - reads - first_reads
        one = pa.table({"id": pa.array([1], pa.int64()), "p": ["k0"]})
        handle.append(one)  # a registered log: main's first write starts main's own log
        translate.load(handle.state())
        handle.append(one)  # the append measured: one version on that log
        reads = translate.COUNTERS.log_files_read
        t0 = time.perf_counter()
        translate.load(handle.state())
        after = time.perf_counter() - t0
        after_reads = translate.COUNTERS.log_files_read - reads
    return {"iceberg_metadata_files": files,
            "iceberg_first_load_seconds": round(first, 3),
            "iceberg_first_load_log_files_read": first_reads,
            "iceberg_cached_load_seconds": round(cached, 6),
            "iceberg_cached_load_log_files_read": cached_reads,
            "iceberg_load_after_append_seconds": round(after, 3),
            "iceberg_load_after_append_log_files_read": after_reads}


def spark_insert_figures(inserts: int = 10, rounds: int = 3,
                         rows: int = 1000) -> dict[str, Any]:
    """One Spark INSERT into a Delta table vs into an Iceberg table of `rows` rows."""
    from spark_lakeversion.server.embedded import start_embedded_server
    from spark_lakeversion.spark import session

    tmp = Path(tempfile.mkdtemp(prefix="lakeversion-bench-facade-spark-"))
    server = start_embedded_server(f"sqlite:///{tmp / 'store.db'}", str(tmp / "wh"),
                                   stop_at_exit=True)
    try:
        settings: dict[str, Any] = {
            "spark.master": "local[2]", "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false", "spark.sql.shuffle.partitions": "1"}
        spark = session(branch="main", server=server.url, **settings)
        spark.sparkContext.setLogLevel("ERROR")
        schema = pa.schema([("id", pa.int32()), ("v", pa.string())])
        seed = pa.table({"id": pa.array(range(rows), pa.int32()),
                         "v": [f"row {i}" for i in range(rows)]}, schema=schema)
        with connect(server.url, warehouse=str(tmp / "wh")) as catalog:
            delta = catalog.branch("main").delta("db.d")
            delta.create(schema)
            delta.append(seed)
        spark.sql("CREATE TABLE lv.db.i (id INT, v STRING) USING iceberg")
        spark.sql(f"INSERT INTO lv.db.i SELECT CAST(id AS INT), concat('row ', id) "
                  f"FROM range({rows})")
        spark.sql("CREATE BRANCH bench")
        tables = {"delta": "lv.db@bench.d", "iceberg": "lv.db@bench.i"}

        def one_round(table: str, start: int) -> float:
            t0 = time.perf_counter()
            for i in range(start, start + inserts):
                spark.sql(f"INSERT INTO {table} VALUES ({i}, 'row {i}')")
            return (time.perf_counter() - t0) / inserts

        for table in tables.values():
            one_round(table, 10**6)  # warm-up
        times: dict[str, list[float]] = {"delta": [], "iceberg": []}
        for r in range(rounds):
            order = ("delta", "iceberg") if r % 2 == 0 else ("iceberg", "delta")
            for name in order:
                times[name].append(one_round(tables[name], 2 * 10**6 + r * inserts))
        counts = {name: spark.sql(f"SELECT count(*) AS n FROM {t}").collect()[0].n
                  for name, t in tables.items()}
        spark.stop()
    finally:
        server.stop()
    d, i = statistics.median(times["delta"]), statistics.median(times["iceberg"])
    return {"spark_insert_table_rows": rows, "spark_inserts_per_round": inserts,
            "spark_insert_delta_ms": round(1000 * d, 1),
            "spark_insert_iceberg_ms": round(1000 * i, 1),
            "spark_insert_ratio_delta_vs_iceberg": round(d / i, 3),
            "spark_insert_target_ratio": TARGET_RATIO,
            "spark_rows_delta": counts["delta"], "spark_rows_iceberg": counts["iceberg"]}
