"""`lakeversion bench rows`: what row-level work costs against doing it without us, in one run.

The lake: a keyed table (`id` is its identifier field) of `rows` rows in `files` data files
of contiguous ids, written through the real server. Two branches, `ours` and `theirs`, each
update `updates` rows spread over `spread` files (different files on each side), each file
rewritten whole (copy-on-write, as Spark does: the file's other rows carried over).

Measurements, one function each in `MEASUREMENTS`, each given the same `RowsLake`:
- `measure_diff`: the row diff main -> ours (time, files read: target <= 2 x spread), next
  to the same diff done without us: two full pyiceberg scans and an anti-join both ways
  in pyarrow. Target: ours <= 0.1x;
- `measure_changes_check`: a `changes.` null check of the merge of ours into main, next to
  the same null check over the whole table (the preview). Target: <= 0.1x;
- `row_merge.measure_merge`: two more branches update as many rows over the same files,
  merged by rows: time, files read and rewritten (target <= 2 x spread), bytes written.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spark_lakeversion.bench.row_merge import measure_merge
from spark_lakeversion.checks.runner import run_checks
from spark_lakeversion.model import CheckKind, CheckSpec
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.versioning.control import VersionControl

TABLE = "bench.k"
ARROW = pa.schema([pa.field("id", pa.int64(), nullable=False),
                   pa.field("amount", pa.float64()), pa.field("v", pa.string())])


@dataclass
class RowsLake:
    """The bench's lake, handed to every measurement: its server, a pyiceberg REST catalog
    per ref, the table, the two sides and what each changed."""

    server: Any
    catalog: Callable[[str], Any]
    table: str
    rows: int
    files: int
    #: branch -> the ids it updated (each side's files are disjoint)
    updated: dict[str, list[int]] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.server.store


def _rows(ids: pa.Array, tag: str) -> pa.Table:
    return pa.table({"id": ids, "amount": pc.multiply(ids, 0.5),
                     "v": pa.array([tag] * len(ids), pa.string())}, schema=ARROW)


def build(server: Any, rows: int, files: int, updates: int, spread: int) -> RowsLake:
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, LongType, NestedField, StringType

    def catalog(ref: str) -> Any:
        return RestCatalog(f"bench-{ref}", uri=server.iceberg_uri, warehouse=ref)

    main = catalog("main")
    main.create_namespace("bench")
    schema = Schema(NestedField(1, "id", LongType(), required=True),
                    NestedField(2, "amount", DoubleType(), required=False),
                    NestedField(3, "v", StringType(), required=False),
                    identifier_field_ids=[1])
    table = main.create_table(TABLE, schema=schema)
    per_file = rows // files
    for number in range(files):  # one data file per append
        table.append(_rows(pa.array(range(number * per_file, (number + 1) * per_file),
                                    pa.int64()), "v"))
    lake = RowsLake(server, catalog, TABLE, per_file * files, files)
    for side, first in (("ours", 0), ("theirs", spread)):
        server.store.create_ref(side)
        updated: list[int] = []
        for number in range(first, first + spread):
            lo, hi = number * per_file, (number + 1) * per_file
            k = min(per_file, updates // spread)
            chosen = {lo + j * (per_file // k) for j in range(k)}
            ids = pa.array(range(lo, hi), pa.int64())
            tag = pa.array([f"{side}-{i}" if i in chosen else "v" for i in range(lo, hi)])
            data = _rows(ids, "v").set_column(2, "v", tag)
            catalog(side).load_table(TABLE).overwrite(
                data, overwrite_filter=f"id >= {lo} AND id < {hi}")
            updated.extend(sorted(chosen))
        lake.updated[side] = updated
    return lake


def measure_diff(lake: RowsLake) -> dict[str, Any]:
    """Our row diff main -> ours vs two full scans and an anti-join in pyarrow."""
    store = lake.store
    started = time.perf_counter()
    page = store.diff_rows("main", "ours", lake.table)
    ours_s = time.perf_counter() - started

    started = time.perf_counter()
    before = lake.catalog("main").load_table(lake.table).scan().to_arrow()
    after = lake.catalog("ours").load_table(lake.table).scan().to_arrow()
    keys = before.column_names
    deleted = before.join(after, keys=keys, join_type="left anti")
    inserted = after.join(before, keys=keys, join_type="left anti")
    plain_s = time.perf_counter() - started
    expected = 2 * len(lake.updated["ours"])
    return {
        "diff_s": round(ours_s, 3),
        "diff_rows": page.rows.num_rows,
        "diff_rows_expected": expected,
        "diff_files_read": page.statistics.get("files_read"),
        "diff_files_skipped": page.statistics.get("files_skipped"),
        "plain_scan_antijoin_s": round(plain_s, 3),
        "plain_rows": deleted.num_rows + inserted.num_rows,
        "diff_to_plain_ratio": round(ours_s / plain_s, 4),
    }


def measure_changes_check(lake: RowsLake) -> dict[str, Any]:
    """A `changes.` null check of the merge of ours into main vs the same over the table."""
    store = lake.store
    assert isinstance(store, VersionControl)  # the server's own store: the gate's context
    main, ours = store.get_ref("main").head, store.get_ref("ours").head
    context = store.check_context(ours, "ours", ours, "main", main, tuple(
        store.diff("main", "ours")))
    changed = CheckSpec("main", "new_nulls", CheckKind.SQL,
                        f"SELECT id FROM changes.{lake.table} WHERE change IN "
                        "('insert', 'update_after') AND (amount IS NULL OR v IS NULL)", (), 3600)
    whole = CheckSpec("main", "all_nulls", CheckKind.SQL,
                      f"SELECT id FROM {lake.table} WHERE amount IS NULL OR v IS NULL", (),
                      3600)
    run_checks(context, [whole])  # warm: the spare DuckDB databases
    timings: dict[str, float] = {}
    statuses: dict[str, str] = {}
    for spec in (changed, whole):
        started = time.perf_counter()
        [report] = run_checks(context, [spec])
        timings[spec.name] = time.perf_counter() - started
        statuses[spec.name] = report.status.value
    return {
        "changes_check_s": round(timings["new_nulls"], 3),
        "changes_check_status": statuses["new_nulls"],
        "whole_table_check_s": round(timings["all_nulls"], 3),
        "whole_table_check_status": statuses["all_nulls"],
        "changes_to_whole_ratio": round(timings["new_nulls"] / timings["all_nulls"], 4),
    }


#: one function per measurement, each given the same lake; the row merge appends its own
MEASUREMENTS: list[Callable[[RowsLake], dict[str, Any]]] = [measure_diff,
                                                            measure_changes_check,
                                                            measure_merge]


def run(rows: int = 2_000_000, files: int = 200, updates: int = 1000, spread: int = 5,
        **_: Any) -> dict[str, Any]:
    if files < 2 * spread or rows < files or updates < spread:
        from spark_lakeversion.errors import InvalidInput

        raise InvalidInput("bench rows needs files >= 2 x spread, rows >= files and "
                           "updates >= spread")
    root = Path(tempfile.mkdtemp(prefix="lakeversion-bench-rows-"))
    try:
        with start_embedded_server(f"sqlite:///{root / 'store.db'}",
                                   warehouse=str(root / "warehouse")) as server:
            started = time.perf_counter()
            lake = build(server, rows, files, updates, spread)
            figures: dict[str, Any] = {
                "benchmark": "rows", "rows": lake.rows, "files": files,
                "updates_per_side": len(lake.updated["ours"]), "files_per_side": spread,
                "setup_s": round(time.perf_counter() - started, 1)}
            for measure in MEASUREMENTS:
                figures.update(measure(lake))
            return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - manual runs
    import json

    print(json.dumps(run(), indent=2))
