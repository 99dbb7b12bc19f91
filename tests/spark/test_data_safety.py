"""No Spark command on one ref may delete a file another ref still reads (issue: data safety).

Real Spark tables through our catalog (`lv`) and through Spark's stock Iceberg REST catalog
pointed at the same server; every other ref must read the same rows afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from spark_lakeversion.errors import UnsafeOperation
from spark_lakeversion.gc import collect_garbage
from tests.spark.helpers import SparkLake


def _files(lake: SparkLake) -> set[Path]:
    root = Path(urlparse(lake.server.warehouse).path)
    return {p for p in root.rglob("*") if p.is_file()}


def _reads(lake: SparkLake, refs: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    return {ref: [tuple(r) for r in lake.rows(f"SELECT * FROM {{lv}}.`db@{ref}`.t ORDER BY id")]
            for ref in refs}


@pytest.fixture
def branched(orders: SparkLake) -> SparkLake:
    """main (1, 2) tagged v1, then (3) on main; dev adds (10)."""
    orders.sql("CREATE TAG v1")
    orders.sql("INSERT INTO {lv}.db.t VALUES (3, 'c')")
    orders.sql("CREATE BRANCH dev")
    orders.sql("INSERT INTO {lv}.db@dev.t VALUES (10, 'dev')")
    return orders


def test_drop_purge_on_a_branch_drops_it_there_only(branched: SparkLake) -> None:
    lake = branched
    refs = ["main", "v1", "main~1"]
    before, files = _reads(lake, refs), _files(lake)
    lake.sql("DROP TABLE {lv}.db@dev.t PURGE")
    assert not lake.rows("SHOW TABLES IN {lv}.`db@dev`")
    assert _reads(lake, refs) == before
    assert _files(lake) == files  # nothing deleted: gc's job
    lake.sql("CREATE BRANCH dev2 FROM v1")
    lake.sql("DROP TABLE {lv}.db@dev2.t")  # a plain drop, likewise
    assert _reads(lake, refs) == before
    assert _files(lake) == files


def test_file_deleting_procedures_are_refused_with_a_pointer_to_gc(branched: SparkLake) -> None:
    lake = branched
    before, files = _reads(lake, ["main", "v1", "dev"]), _files(lake)
    for call in ("CALL {lv}.system.remove_orphan_files(table => 'db.t', older_than => "
                 "TIMESTAMP '2999-01-01 00:00:00')",
                 "CALL {lv}.system.expire_snapshots(table => 'db.t', retain_last => 1)"):
        with pytest.raises(UnsafeOperation, match="lakeversion gc"):
            lake.sql(call).collect()
    assert _reads(lake, ["main", "v1", "dev"]) == before
    assert _files(lake) == files


def test_stock_iceberg_rest_clients_cannot_delete_shared_files(spark: Any,
                                                               branched: SparkLake) -> None:
    """Spark's own REST catalog purges and cleans up on the client: the server tells it
    `gc.enabled=false`, so Iceberg itself refuses."""
    lake = branched
    spark.conf.set("spark.sql.catalog.stock", "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set("spark.sql.catalog.stock.type", "rest")
    spark.conf.set("spark.sql.catalog.stock.uri", lake.server.iceberg_uri)
    spark.conf.set("spark.sql.catalog.stock.warehouse", "dev")
    spark.conf.set("spark.sql.catalog.stock.cache-enabled", "false")
    before, files = _reads(lake, ["main", "v1", "dev"]), _files(lake)
    for statement in ("DROP TABLE stock.db.t PURGE",
                      "CALL stock.system.expire_snapshots(table => 'db.t', retain_last => 1)",
                      "CALL stock.system.remove_orphan_files(table => 'db.t')"):
        with pytest.raises(Exception, match="GC is disabled"):
            spark.sql(statement).collect()
    assert _reads(lake, ["main", "v1", "dev"]) == before
    assert _files(lake) == files


def test_gc_after_dropping_a_branch_reclaims_its_files_and_keeps_every_read(
        branched: SparkLake) -> None:
    lake = branched
    refs = ["main", "v1"]
    before = _reads(lake, refs)
    files_before = _files(lake)
    dry = collect_garbage(lake.server.store, roots=[lake.server.warehouse], force=True,
                          older_than="0s", keep_commits_since="0s",
                          dry_run=True)
    assert not dry.garbage  # dev still reaches its files
    lake.sql("DROP BRANCH dev FORCE")
    dry = collect_garbage(lake.server.store, roots=[lake.server.warehouse], force=True,
                          older_than="0s", keep_commits_since="0s",
                          dry_run=True)
    assert _files(lake) == files_before  # a dry run deletes nothing
    unique_to_dev = {Path(f.path.removeprefix("file://")) for f in dry.garbage}
    assert unique_to_dev  # dev's data file, manifest, manifest list, metadata file
    assert any(p.suffix == ".parquet" for p in unique_to_dev)
    report = collect_garbage(lake.server.store, roots=[lake.server.warehouse], force=True,
                             older_than="0s", keep_commits_since="0s")
    assert _files(lake) == files_before - unique_to_dev
    assert report.deleted == len(unique_to_dev)
    assert _reads(lake, refs) == before
