"""`lakeversion bench delta`: Delta tables on branches, measured in one run.

Figures (sizes configurable: `--files`, `--appends`):
- branch creation once the catalog holds a table of `files` data files, against the same
  while it holds only a 10-file table (expect O(1): the ratio stays near 1);
- the first write on that branch (one appended row): time and the branch log's bytes
  (version 0 listing the parent's files by URI, plus its checkpoint);
- a commuting merge of `appends` single-file appends on each side: time, and the data bytes
  the merge wrote (must be 0: it writes one log version);
- the same branch-and-write done the only way delta-rs offers on its own, copying the table
  directory, for comparison.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_lakeversion.api import Catalog, connect
from spark_lakeversion.formats.delta.lib import deltalake

SCHEMA = pa.schema([("id", pa.int64()), ("part", pa.int32())])


def _rows(start: int, n: int, part: int) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "part": pa.array([part] * n, pa.int32())}, schema=SCHEMA)


def _sizes(root: Path) -> tuple[int, int]:
    """(data bytes, log bytes) under `root`."""
    data = log = 0
    for path in root.rglob("*"):
        if path.is_file():
            if "_delta_log" in path.parts:
                log += path.stat().st_size
            else:
                data += path.stat().st_size
    return data, log


def _table_with_files(catalog: Catalog, name: str, files: int) -> Any:
    """A partitioned table with one file in each of `files` partitions (one write)."""
    handle = catalog.branch("main").delta(f"bench.{name}")
    handle.create(SCHEMA, partition_by=["part"])
    data = pa.table({"id": pa.array(range(files), pa.int64()),
                     "part": pa.array(range(files), pa.int32())}, schema=SCHEMA)
    handle.append(data)
    return handle


def _timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(files: int = 10_000, appends: int = 200, iceberg_files: int = 10_000,
        spark_inserts: int = 10) -> dict[str, Any]:
    """Branching figures, then the Iceberg facade's (`bench/delta_iceberg.py`; Spark's
    INSERT comparison unless `spark_inserts` is 0)."""
    from spark_lakeversion.bench import delta_iceberg

    figures = _branching(files, appends)
    figures.update(delta_iceberg.metadata_figures(iceberg_files))
    if spark_inserts:
        figures.update(delta_iceberg.spark_insert_figures(spark_inserts))
    return figures


def _branching(files: int, appends: int) -> dict[str, Any]:
    deltalake()
    tmp = Path(tempfile.mkdtemp(prefix="lakeversion-bench-delta-"))
    try:
        catalog = connect(f"sqlite:///{tmp / 'store.db'}", warehouse=str(tmp / "warehouse"))
        _table_with_files(catalog, "small", 10)
        branch_small = _timed(lambda: catalog.branch("b_small").create(from_="main"))
        _table_with_files(catalog, "big", files)
        branch_big = _timed(lambda: catalog.branch("dev").create(from_="main"))
        dev = catalog.branch("dev").delta("bench.big")
        first_write = _timed(lambda: dev.append(_rows(10**9, 1, 0)))
        state = dev.state()
        _, branch_log_bytes = _sizes(Path(state.location[len("file://"):]))

        main = catalog.branch("main").delta("bench.big")
        writes_start = time.perf_counter()
        for i in range(appends):
            dev.append(_rows(2 * 10**9 + i, 1, i % files))
            main.append(_rows(3 * 10**9 + i, 1, i % files))
        writes_seconds = time.perf_counter() - writes_start
        root = Path(main.state().root[len("file://"):])
        data_before, _ = _sizes(root)
        merged: dict[str, Any] = {}

        def merge() -> None:
            merged["result"] = catalog.store.merge("dev", "main")

        merge_seconds = _timed(merge)
        data_after, _ = _sizes(root)
        result = merged["result"]
        rows = main.to_arrow(columns=["id"]).num_rows

        copy_dir = tmp / "copy"
        main_root = Path(catalog.ref("main~0").delta("bench.big").state().root[7:])

        def copy_and_write() -> None:
            shutil.copytree(main_root, copy_dir,
                            ignore=shutil.ignore_patterns("_branches"))
            deltalake().write_deltalake(str(copy_dir), _rows(4 * 10**9, 1, 0), mode="append")

        copy_seconds = _timed(copy_and_write)
        copy_bytes = sum(f.stat().st_size for f in copy_dir.rglob("*") if f.is_file())
        return {
            "files": files,
            "appends_per_side": appends,
            "branch_create_seconds_small_table": round(branch_small, 4),
            "branch_create_seconds": round(branch_big, 4),
            "branch_create_ratio_big_vs_small": round(branch_big / max(branch_small, 1e-9), 2),
            "first_write_seconds": round(first_write, 3),
            "first_write_log_bytes": branch_log_bytes,
            "append_commits_seconds": round(writes_seconds, 2),
            "merge_seconds": round(merge_seconds, 3),
            "merge_successful": result.successful,
            "merge_data_bytes_written": data_after - data_before,
            "merged_rows": rows,
            "delta_rs_copy_branch_seconds": round(copy_seconds, 3),
            "delta_rs_copy_branch_bytes": copy_bytes,
            "speedup_first_write_vs_copy": round(copy_seconds / max(first_write, 1e-9), 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
