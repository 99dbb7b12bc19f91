"""The merge benchmark runs end to end (tiny sizes) and its merges write no data bytes."""

from __future__ import annotations

from spark_lakeversion.bench import merge as bench_merge


def test_bench_merge_runs_small_and_writes_no_data() -> None:
    figures = bench_merge.run(source_snapshots=4, target_snapshots=2, wide_files=6)
    assert figures["replay_files_added"] == 4
    assert figures["wide_files_added"] == 6
    assert figures["data_bytes_written"] == 0
    assert figures["replay_metadata_bytes_written"] > 0
