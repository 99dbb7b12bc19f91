"""What an immutable file says, kept per process (`filecache`): known by path, size and
modification time when local (a file rewritten in place is parsed again), by location when
remote; bounded by weight; a missing file never kept."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_lakeversion.filecache import FileCache, identity, local_path


def test_local_paths_and_uris() -> None:
    assert local_path("/a/b.json") == "/a/b.json"
    assert local_path("file:///a/b.json") == "/a/b.json"
    assert local_path("file://host/a/b.json") is None
    assert local_path("s3://bucket/a/b.json") is None
    assert local_path("relative/b.json") is None


def test_a_local_file_is_known_by_path_size_and_time(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("one")
    first = identity(f"file://{path}")
    assert first is not None and first[0] == f"file://{path}" and first[1] == 3
    path.write_text("three")
    assert identity(f"file://{path}") != first
    assert identity("s3://bucket/m.json") == ("s3://bucket/m.json",)
    assert identity(str(tmp_path / "missing.json")) is None


def test_a_file_rewritten_in_place_is_parsed_again(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("one")
    cache: FileCache[str] = FileCache(10)
    assert cache.get(str(path), path.read_text) == "one"
    assert cache.get(str(path), lambda: "never read") == "one"  # kept
    path.write_text("other")
    os.utime(path, ns=(1, 1))
    assert cache.get(str(path), path.read_text) == "other"
    # what else the key needs (a snapshot id, a sequence number) keeps values apart
    assert cache.get(str(path), lambda: "at 7", 7) == "at 7"
    assert cache.get(str(path), lambda: "never read", 7) == "at 7"


def test_a_missing_file_is_never_kept(tmp_path: Path) -> None:
    cache: FileCache[str] = FileCache(10)
    missing = str(tmp_path / "gone.json")
    with pytest.raises(FileNotFoundError):
        cache.get(missing, lambda: Path(missing).read_text())
    Path(missing).write_text("now here")
    assert cache.get(missing, lambda: Path(missing).read_text()) == "now here"


def test_bounded_by_weight_least_recently_used_out_first() -> None:
    cache: FileCache[list[int]] = FileCache(5)
    for name in ("s3://b/1", "s3://b/2", "s3://b/3"):
        cache.get(name, lambda: [1, 2], weight=len)
    assert len(cache) == 2  # 6 > 5: the first out
    cache.get("s3://b/2", lambda: [0])  # used: now the newest
    cache.get("s3://b/4", lambda: [1, 2], weight=len)
    assert cache.get("s3://b/2", lambda: [9]) == [1, 2]
    assert cache.get("s3://b/3", lambda: [9]) == [9]  # dropped for 4
    assert cache.get("s3://b/big", lambda: list(range(6)), weight=len) == list(range(6))
    assert cache.get("s3://b/big", lambda: [], weight=len) == []  # too heavy: never kept


def test_a_parquet_file_rewritten_in_place_has_its_new_footer(tmp_path: Path) -> None:
    """The row diff's native reader keeps footers (field ids, rows): a data file a client
    rewrote in place anyway is read again, so its row count is the file's."""
    from spark_lakeversion.rows.native import _footers

    path = str(tmp_path / "d.parquet")
    field = pa.field("id", pa.int64(), metadata={b"PARQUET:field_id": b"1"})
    pq.write_table(pa.table({"id": [1, 2]}, pa.schema([field])), path)
    assert _footers([path])[path].rows == 2
    pq.write_table(pa.table({"id": [1, 2, 3, 4, 5]}, pa.schema([field])), path)
    assert _footers([path])[path].rows == 5 and _footers([path])[path].ids == [1]
    Path(path).write_text("not parquet")
    assert _footers([path]) == {}
