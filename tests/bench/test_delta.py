"""The Delta benchmark runs end to end (tiny sizes): branching copies no data, the merge
replays and writes no data bytes."""

from __future__ import annotations

from click.testing import CliRunner

from spark_lakeversion.bench import delta as bench_delta
from spark_lakeversion.cli.main import cli


def test_bench_delta_runs_small_and_its_merge_writes_no_data() -> None:
    figures = bench_delta.run(files=30, appends=3, iceberg_files=50, spark_inserts=0)
    assert figures["merge_successful"] is True
    assert figures["merge_data_bytes_written"] == 0
    assert figures["merged_rows"] == 30 + 1 + 2 * 3
    assert figures["first_write_log_bytes"] > 0
    assert figures["delta_rs_copy_branch_bytes"] > figures["first_write_log_bytes"]


def test_bench_delta_sizes_are_options() -> None:
    result = CliRunner().invoke(cli, ["bench", "delta", "--json", "--files", "0"])
    assert result.exit_code != 0 and "--files" in result.output


def test_bench_delta_facade_loads_read_no_log_when_cached_and_one_file_after_an_append(
        ) -> None:
    figures = bench_delta.run(files=10, appends=1, iceberg_files=200, spark_inserts=0)
    assert figures["iceberg_first_load_log_files_read"] == 11  # versions 0..10
    assert figures["iceberg_cached_load_log_files_read"] == 0
    assert figures["iceberg_load_after_append_log_files_read"] == 1
