"""`lakeversion bench rows`, small: every figure is there and the diff reads only the
changed files (performance itself is the benchmark's, not a test's)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from spark_lakeversion.cli.main import cli


def test_bench_rows_runs_small() -> None:
    result = CliRunner().invoke(cli, ["bench", "rows", "--json", "--rows", "4000", "--files",
                                      "20", "--updates", "50", "--spread", "5", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["diff_rows"] == figures["diff_rows_expected"] == 100
    assert figures["plain_rows"] == 100
    assert figures["diff_files_read"] == 10 and figures["diff_files_skipped"] == 15
    for label in ("null", "empty"):
        assert figures[f"changes_{label}_check_status"] == "passed"
        assert figures[f"whole_table_{label}_check_status"] == "passed"
    for name in ("diff_to_plain_ratio", "changes_to_whole_null_ratio",
                 "changes_to_whole_empty_ratio", "diff_s", "whole_table_null_check_s",
                 "changes_null_check_cold_s", "changes_to_whole_empty_cold_ratio",
                 "merge_s", "merge_bytes_written"):
        assert figures[name] > 0
    # the row merge: both sides rewrote the same 5 files; each is rewritten once
    assert "CONCURRENT_REWRITE" in figures["merge_file_conflicts"]
    assert figures["merge_dry_run_successful"] is True
    assert figures["merge_files_rewritten"] == 5 and figures["merge_rows_updated_per_side"] == 50
    assert figures["merge_files_read"] <= 15


def test_bench_rows_refuses_impossible_sizes() -> None:
    result = CliRunner().invoke(cli, ["bench", "rows", "--files", "4", "--spread", "5"])
    assert result.exit_code == 1 and "files >= 2 x spread" in result.output
