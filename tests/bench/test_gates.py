"""The gates benchmark runs end to end at a small size and its check really ran."""

from __future__ import annotations

from spark_lakeversion.bench import gates as bench_gates


def test_bench_gates_runs_small() -> None:
    figures = bench_gates.run(rows=5000, rounds=1)
    assert figures["check_status"] == "passed" and figures["check_violations"] == 0
    assert figures["pyiceberg_scan_rows"] == 5000
    assert figures["gated_merge_s"] > 0 and figures["sql_check_s"] > 0
