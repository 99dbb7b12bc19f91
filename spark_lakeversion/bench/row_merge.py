"""The row-level merge's measurement of `lakeversion bench rows` (`rows.MEASUREMENTS`).

On the bench's keyed table, two new branches each update `updates` rows spread over the SAME
`spread` data files (different rows of them, each file rewritten whole: copy-on-write), so
their merge meets CONCURRENT_REWRITE on every one of those files and goes down to rows.
Measured: the dry run (median of the lake's rounds) and the merge itself (once: it writes),
the files and rows it rewrote and the bytes it wrote (target: files rewritten <= 2 x spread).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

SIDES = ("rowmerge-target", "rowmerge-source")


def _update_same_files(lake: Any, side: str, offset: int, updates: int, spread: int) -> int:
    """Rewrite files 0..spread-1 on `side`, changing `updates // spread` rows of each
    (every other chosen row from `offset`); returns how many rows it changed."""
    table = lake.catalog(side).load_table(lake.table)
    arrow = table.schema().as_arrow()
    per_file = lake.rows // lake.files
    k = max(1, min(per_file // 2, updates // spread))
    step = max(2, per_file // k)
    changed = 0
    for number in range(spread):
        lo, hi = number * per_file, (number + 1) * per_file
        ids = pa.array(range(lo, hi), pa.int64())
        chosen = {lo + offset + j * step for j in range(k) if offset + j * step < per_file}
        tags = pa.array([f"{side}-{i}" if i in chosen else "v" for i in range(lo, hi)])
        data = pa.Table.from_arrays([ids, pc.multiply(ids, 0.5), tags], schema=arrow)
        table.overwrite(data, overwrite_filter=f"id >= {lo} AND id < {hi}")
        table = lake.catalog(side).load_table(lake.table)
        changed += len(chosen)
    return changed


def measure_merge(lake: Any) -> dict[str, Any]:
    """Two branches updating different rows of the same files, merged by rows (as many
    rows and files per side as the bench's own sides updated)."""
    per_file = lake.rows // lake.files
    updates = len(lake.updated["ours"])
    spread = len({i // per_file for i in lake.updated["ours"]})
    store = lake.store
    target, source = SIDES
    for side in SIDES:
        store.create_ref(side, from_ref="main")
    changed = {side: _update_same_files(lake, side, offset, updates, spread)
               for side, offset in ((target, 0), (source, 1))}
    times = []
    dry: Any = None
    for _ in range(lake.rounds):
        started = time.perf_counter()
        dry = store.merge(source, target, dry_run=True)
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    result = store.merge(source, target)
    merge_s = time.perf_counter() - started
    [detail] = result.details
    rows = detail.statistics.get("row_merge", {})
    return {
        "merge_rows_updated_per_side": changed[source],
        "merge_files_per_side": spread,
        "merge_file_conflicts": rows.get("file_conflicts"),
        "merge_s": round(merge_s, 3),
        "merge_dry_run_s": round(statistics.median(times), 3),
        "merge_dry_run_successful": bool(dry is not None and dry.successful),
        "merge_files_read": rows.get("files_read"),
        "merge_rows_read": rows.get("rows_read"),
        "merge_files_rewritten": result.stats["files_rewritten"],
        "merge_rows_rewritten": result.stats["rows_rewritten"],
        "merge_bytes_written": result.stats["bytes_written"],
    }
