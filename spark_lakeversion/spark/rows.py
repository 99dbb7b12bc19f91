"""Row work on Spark, in the caller's session: the server plans (`VersionStore.plan_row_diff`,
`rows.plan`), the shim's `RowEngine` stages each side's files and runs the plan's SQL (the
same statements DuckDB runs in the server), and the answer comes back as Arrow in the
table's own types, as the DuckDB engine gives it.

The session needs a lakeversion catalog on the same server (`spark.lakeversion.catalog`,
else ``lv``): Spark reads every table, Iceberg or Delta, through its Iceberg REST catalog.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import MergeResult
from spark_lakeversion.versioning.options import MergeOptions

#: the row engines a caller may name (`rows.dialect` has their SQL)
ENGINES = ("duckdb", "spark")


def check_engine(engine: str, spark: Any = None) -> str:
    """`engine` checked (a typed error, never a trace); `spark` is required for Spark."""
    if engine not in ENGINES:
        raise InvalidInput(f"unknown row engine {engine!r}: {' or '.join(ENGINES)}")
    if engine == "spark" and spark is None:
        raise InvalidInput("engine='spark' runs in a SparkSession: pass spark=<session> "
                           "(spark_lakeversion.spark.session())")
    return engine


def catalog_of(spark: Any) -> str:
    """The session's lakeversion catalog name."""
    return str(spark.conf.get("spark.lakeversion.catalog", "lv"))


def run_plan(spark: Any, plan: Mapping[str, Any], catalog: str | None = None) -> pa.Table:
    """The answer of a row plan run in `spark`, typed by the plan's schema; the staged
    scans and temporary views are released afterwards."""
    from pyspark.sql import DataFrame

    from spark_lakeversion.rows.diff import typed
    from spark_lakeversion.rows.plan import schema_of
    from spark_lakeversion.spark.jvm import install_error_translation, lakeversion_errors

    schema = schema_of(str(plan["schema"]))
    text = json.dumps(plan)
    engine = spark._jvm.io.lakeversion.spark.RowEngine
    with lakeversion_errors():
        try:
            frame = DataFrame(engine.run(spark._jsparkSession, catalog or catalog_of(spark),
                                         text), spark)
            batches = frame._collect_as_arrow()
        finally:
            engine.release(spark._jsparkSession, text)
            # PySpark re-patches py4j when it makes the DataFrame's SQLContext: ours again
            install_error_translation()
    if not batches:
        return schema.empty_table()
    table = pa.Table.from_batches(batches)
    return typed(table.rename_columns(schema.names), schema)


def merge_on_spark(spark: Any, source: str, target: str, options: MergeOptions,
                   catalog: str | None = None) -> MergeResult:
    """Merge `source` into `target` with every row-level merge run in `spark` (the shim's
    `RowEngine.merge`: the server plans each, Spark runs the rule and writes the merged rows
    under a staging directory the server issued, the server checks the files and commits
    one merge snapshot through the usual merge: protection, grants, gates, gc's fence).
    Conflicts raise `ConflictError` with the result, as any merge's do."""
    from spark_lakeversion.spark.jvm import install_error_translation, lakeversion_errors

    if options.dry_run:
        raise InvalidInput("a dry run plans in the server: merge without engine='spark'")
    body = {"source": source, "target": target, **options.to_dict()}
    engine = spark._jvm.io.lakeversion.spark.RowEngine
    with lakeversion_errors():
        try:
            text = engine.merge(spark._jsparkSession, catalog or catalog_of(spark),
                                json.dumps(body))
        finally:
            install_error_translation()
    return MergeResult.from_dict(json.loads(text))


__all__ = ["ENGINES", "catalog_of", "check_engine", "merge_on_spark", "run_plan"]
