"""`lakeversion bench rows`: what row-level work costs against doing it without us, in one run.

The lake: a keyed table (`id` is its identifier field) of `rows` rows in `files` data files
of contiguous ids, written through the real server. Two branches, `ours` and `theirs`, each
update `updates` rows spread over `spread` files (different files on each side), each file
rewritten whole (copy-on-write, as Spark does: the file's other rows carried over).

Measurements, one function each in `MEASUREMENTS`, each given the same `RowsLake`:
- `measure_diff`: the row diff main -> ours (time, files read: target <= 2 x spread), next
  to the same diff done without us: two full pyiceberg scans and an anti-join both ways
  in pyarrow. Target: ours <= 0.1x;
- `measure_changes_check`: `changes.` checks of the merge of ours into main, next to the
  same checks over the whole table (the preview): a null check and an empty-label check.
  Target: <= 0.1x;
- `row_merge.measure_merge`: two more branches update as many rows over the same files,
  merged by rows: time, files read and rewritten (target <= 2 x spread), bytes written.
Each is warmed once, then timed `rounds` times (the median is reported); the two figures of
a ratio take turns round by round, so both see the same moments of a shared machine. Both
checks run through the same engine (`runner.run_checks`, one run per round, as one
gate's): a whole-table check's timed run starts, as a gate's does, with a spare DuckDB
database made ahead with its extensions; a `changes.`-only check's with a bare one made
ahead (`checks/sql.py`), and its run plans and reads the row diff (`changes_row_diff_s`
times that diff alone, in a database of its own). After the warm-up, the metadata, manifest
lists and footers a `changes.` check reads are parsed already (`filecache`), as for every
gate after the first on a state; `changes_{label}_check_cold_s` times the check with every
such parse thrown away first (a gate's first run on states no one has read yet), taking
turns with the whole-table check again (its ratio is against that second median).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spark_lakeversion.bench.row_merge import measure_merge
from spark_lakeversion.checks.changes import changes_table
from spark_lakeversion.checks.runner import run_checks
from spark_lakeversion.checks.sql import wait_for_spare
from spark_lakeversion.filecache import clear_all
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
    #: timed rounds per measurement (the median is reported)
    rounds: int = 3

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


def _median_s(run: Callable[[], Any], rounds: int,
              before: Callable[[], Any] = lambda: None) -> tuple[float, Any]:
    """The median time of `rounds` calls (each after an untimed `before()`), and the last
    call's answer."""
    [(median, answer)] = _medians_s([run], rounds, before)
    return median, answer


def _medians_s(runs: list[Callable[[], Any]], rounds: int,
               before: Callable[[], Any] | list[Callable[[], Any]] = lambda: None
               ) -> list[tuple[float, Any]]:
    """Per run, the median time of `rounds` calls and the last call's answer, the runs
    taking turns round by round (each call after an untimed `before()`, or the run's own
    when `before` is a list): two figures one is divided by the other see the same moments
    of a shared machine, not one phase each."""
    befores = before if isinstance(before, list) else [before] * len(runs)
    times: list[list[float]] = [[] for _ in runs]
    answers: list[Any] = [None] * len(runs)
    for _ in range(rounds):
        for number, run in enumerate(runs):
            befores[number]()
            started = time.perf_counter()
            answers[number] = run()
            times[number].append(time.perf_counter() - started)
    return [(statistics.median(t), a) for t, a in zip(times, answers, strict=True)]


def measure_diff(lake: RowsLake) -> dict[str, Any]:
    """Our row diff main -> ours vs two full scans and an anti-join in pyarrow (each warmed
    once on theirs, then the median of `lake.rounds`)."""
    store = lake.store

    def ours(side: str = "ours") -> Any:
        return store.diff_rows("main", side, lake.table)

    def plain(side: str = "ours") -> tuple[int, int]:
        before = lake.catalog("main").load_table(lake.table).scan().to_arrow()
        after = lake.catalog(side).load_table(lake.table).scan().to_arrow()
        keys = before.column_names
        deleted = before.join(after, keys=keys, join_type="left anti")
        inserted = after.join(before, keys=keys, join_type="left anti")
        return deleted.num_rows, inserted.num_rows

    ours("theirs")
    plain("theirs")
    (ours_s, page), (plain_s, (deleted, inserted)) = _medians_s([ours, plain], lake.rounds)
    return {
        "diff_s": round(ours_s, 3),
        "diff_rows": page.rows.num_rows,
        "diff_rows_expected": 2 * len(lake.updated["ours"]),
        "diff_files_read": page.statistics.get("files_read"),
        "diff_files_skipped": page.statistics.get("files_skipped"),
        "plain_scan_antijoin_s": round(plain_s, 3),
        "plain_rows": deleted + inserted,
        "diff_to_plain_ratio": round(ours_s / plain_s, 4),
    }


def _cold() -> None:
    """Before a cold round: every kept parse thrown away, a spare database ready."""
    clear_all()
    wait_for_spare()


def measure_changes_check(lake: RowsLake) -> dict[str, Any]:
    """A `changes.` check of the merge of ours into main vs the same check over the whole
    table (the preview), median of `lake.rounds` each: a null check (which DuckDB may
    answer for the whole table from file statistics, reading no data file) and an
    empty-label check (which no statistics answer)."""
    store = lake.store
    assert isinstance(store, VersionControl)  # the server's own store: the gate's context
    main, ours = store.get_ref("main").head, store.get_ref("ours").head
    context = store.check_context(ours, "ours", ours, "main", main, tuple(
        store.diff("main", "ours")))
    new = "change IN ('insert', 'update_after') AND "
    pairs = {"null": "(amount IS NULL OR v IS NULL)", "empty": "lower(v) = ''"}
    figures: dict[str, Any] = {}
    for label, condition in pairs.items():
        changed = CheckSpec("main", f"new_{label}", CheckKind.SQL,
                            f"SELECT id FROM changes.{lake.table} WHERE {new}{condition}",
                            (), 3600)
        whole = CheckSpec("main", f"all_{label}", CheckKind.SQL,
                          f"SELECT id FROM {lake.table} WHERE {condition}", (), 3600)
        run_checks(context, [whole])  # warm: the spare DuckDB databases, the files
        run_checks(context, [changed])
        # each timed run starts with a spare database ready, as a gate's does
        (changed_s, [changed_report]), (whole_s, [whole_report]) = _medians_s(
            [lambda spec=changed: run_checks(context, [spec]),  # type: ignore[misc]
             lambda spec=whole: run_checks(context, [spec])],  # type: ignore[misc]
            lake.rounds, wait_for_spare)
        # the row diff alone (planning, reading the changed files, counting), in its own
        # database: what of the check is the change's cost
        diff_s, _ = _median_s(lambda: changes_table(context, lake.table), lake.rounds)
        # the same check on states never read (every kept parse thrown away first), taking
        # turns with the whole-table check as the warm one did
        (cold_s, _), (whole_again_s, _) = _medians_s(
            [lambda spec=changed: run_checks(context, [spec]),  # type: ignore[misc]
             lambda spec=whole: run_checks(context, [spec])],  # type: ignore[misc]
            lake.rounds, [_cold, wait_for_spare])
        figures.update({
            f"changes_{label}_check_s": round(changed_s, 3),
            f"changes_{label}_check_status": changed_report.status.value,
            f"whole_table_{label}_check_s": round(whole_s, 3),
            f"whole_table_{label}_check_status": whole_report.status.value,
            f"changes_to_whole_{label}_ratio": round(changed_s / whole_s, 4),
            f"changes_{label}_row_diff_s": round(diff_s, 3),
            f"changes_{label}_check_cold_s": round(cold_s, 3),
            f"changes_to_whole_{label}_cold_ratio": round(cold_s / whole_again_s, 4),
        })
    return figures


#: one function per measurement, each given the same lake; the row merge appends its own
MEASUREMENTS: list[Callable[[RowsLake], dict[str, Any]]] = [measure_diff,
                                                            measure_changes_check,
                                                            measure_merge]


def run(rows: int = 2_000_000, files: int = 200, updates: int = 1000, spread: int = 5,
        rounds: int = 3, **_: Any) -> dict[str, Any]:
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
            lake.rounds = rounds
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
