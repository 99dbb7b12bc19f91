"""`lakeversion bench gates`: what a merge gate costs, measured in one run.

Figures:
- gated-merge overhead: the same change (one append on a branch) merged into an ungated
  and into a gated branch (one SQL check: a null check plus a uniqueness check), median of
  `rounds`, both through the real server's store;
- the SQL check alone on a `rows`-row, 2-column table (default 1M; the README reports
  10M: ``lakeversion bench gates --rows 10000000``), next to the time pyiceberg takes to
  scan that table once into Arrow. Target: check <= 0.5x the scan (the check reads only
  the columns it needs, in DuckDB's parallel scan, and builds no Python table);
- the null check alone (filter pushdown, no aggregation) against the same scan.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_lakeversion.checks.runner import run_checks
from spark_lakeversion.model import CheckKind, CheckSpec
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.versioning.control import VersionControl

ARROW = pa.schema([pa.field("id", pa.int64()), pa.field("amount", pa.float64())])


def check_sql(table: str) -> str:
    """A null check plus a uniqueness check, as one query selecting violating rows."""
    return (f"SELECT id, 'null' AS problem FROM {table} WHERE id IS NULL OR amount IS NULL "
            f"UNION ALL SELECT id, 'duplicate' AS problem FROM {table} GROUP BY id "
            "HAVING count(*) > 1")


def _rows(start: int, n: int) -> pa.Table:
    ids = pa.array(range(start, start + n), pa.int64())
    return pa.table({"id": ids, "amount": pa.compute.multiply(ids, 0.5)}, schema=ARROW)


def run(rows: int = 1_000_000, rounds: int = 5, **_: Any) -> dict[str, Any]:
    from pyiceberg.catalog.rest import RestCatalog

    root = Path(tempfile.mkdtemp(prefix="lakeversion-bench-gates-"))
    try:
        with start_embedded_server(f"sqlite:///{root / 'store.db'}",
                                   warehouse=str(root / "warehouse")) as server:
            store = server.store

            def catalog(ref: str) -> Any:
                return RestCatalog(f"b-{ref}", uri=server.iceberg_uri, warehouse=ref)

            main = catalog("main")
            main.create_namespace("bench")
            main.create_table("bench.small", schema=ARROW).append(_rows(0, 1000))
            big = main.create_table("bench.big", schema=ARROW)
            for start in range(0, rows, 5_000_000):  # bounded memory while writing
                big.append(_rows(start, min(5_000_000, rows - start)))

            ungated: list[float] = []
            gated: list[float] = []
            for i in range(rounds):
                for name in (f"plain{i}", f"gated{i}", f"src{i}"):
                    store.create_ref(name)
                store.add_check(CheckSpec(f"gated{i}", "quality", CheckKind.SQL,
                                          check_sql("bench.small"), ("bench.small",)))
                catalog(f"src{i}").load_table("bench.small").append(_rows(10_000 + i, 1))
                for target, times in ((f"plain{i}", ungated), (f"gated{i}", gated)):
                    started = time.perf_counter()
                    store.merge(f"src{i}", target, fast_forward=False)
                    times.append(time.perf_counter() - started)

            head = store.get_ref("main").head
            assert isinstance(store, VersionControl)  # the server's own store: the gate's context
            context = store.check_context(head, "main", head, "main", head, ())
            spec = CheckSpec("main", "quality", CheckKind.SQL, check_sql("bench.big"), (),
                             3600)
            null_only = CheckSpec("main", "nulls", CheckKind.SQL,
                                  "SELECT id FROM bench.big WHERE id IS NULL OR amount IS NULL",
                                  (), 3600)
            run_checks(context, [null_only])  # warm: the spare DuckDB databases
            started = time.perf_counter()
            run_checks(context, [null_only])
            null_s = time.perf_counter() - started
            started = time.perf_counter()
            [report] = run_checks(context, [spec])
            check_s = time.perf_counter() - started
            started = time.perf_counter()
            scanned = catalog(head).load_table("bench.big").scan().to_arrow().num_rows
            scan_s = time.perf_counter() - started
        plain, checked = statistics.median(ungated), statistics.median(gated)
        return {
            "benchmark": "gates",
            "rounds": rounds,
            "ungated_merge_s": round(plain, 4),
            "gated_merge_s": round(checked, 4),
            "gate_overhead_s": round(checked - plain, 4),
            "rows": rows,
            "check_status": report.status.value,
            "check_violations": report.violations,
            "sql_check_s": round(check_s, 3),
            "pyiceberg_scan_rows": scanned,
            "pyiceberg_scan_s": round(scan_s, 3),
            "check_to_scan_ratio": round(check_s / scan_s, 3),
            "null_check_s": round(null_s, 3),
            "null_check_to_scan_ratio": round(null_s / scan_s, 3),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - manual runs
    import json

    print(json.dumps(run(), indent=2))
