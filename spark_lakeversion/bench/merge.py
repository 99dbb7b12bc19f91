"""`lakeversion bench merge`: the cost of a content-aware Iceberg merge, measured in one run.

Figures:
- replay: the source branch added 200 single-file append snapshots and the target 50 to the
  same table; the merge time (planning + writing + store commit) against the time it took
  to write those 250 commits in the first place (target: merge under 2 s);
- wide: one source snapshot adding 2,000 files, merged onto a target that appended once;
- data bytes written by the merges (must be 0: only manifests and metadata are written).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import IntegerType, LongType, NestedField

from spark_lakeversion.formats.iceberg.content import iceberg_content
from spark_lakeversion.model import Key, MergeAction, Put
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.wiring import open_store

SCHEMA = Schema(NestedField(1, "id", LongType(), required=False),
                NestedField(2, "p", IntegerType(), required=False))
ARROW = pa.schema([("id", pa.int64()), ("p", pa.int32())])
KEY = Key(("bench", "events"))


def _rows(start: int, n: int, p: int) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "p": pa.array([p] * n, pa.int32())}, schema=ARROW)


def _files(root: Path) -> dict[str, int]:
    return {str(f): f.stat().st_size for f in (root / "warehouse").rglob("*") if f.is_file()}


class _Setup:
    """A store with main/dev over one pyiceberg table (SQLite catalog) in a temp dir."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.catalog = SqlCatalog("bench", uri=f"sqlite:///{root / 'catalog.db'}",
                                  warehouse=f"file://{root / 'warehouse'}")
        if ("bench",) not in self.catalog.list_namespaces():
            self.catalog.create_namespace("bench")
        self.main = self.catalog.create_table(
            f"bench.{name}", SCHEMA, partition_spec=PartitionSpec(
                PartitionField(2, 1000, IdentityTransform(), "p")),
            properties={"format-version": "2"})
        self.main.append(_rows(0, 10, 0))
        self.store: VersionStore = open_store(f"sqlite:///{root / f'{name}.db'}")
        self._commit("main", self.main)
        self.store.create_ref("dev", from_ref="main")
        self.dev = self.catalog.register_table(f"bench.{name}_dev", self.main.metadata_location)

    def _commit(self, branch: str, table: Table) -> None:
        self.store.commit(branch, [Put(KEY, iceberg_content(
            table.metadata, table.metadata_location))], message=f"{branch} change")

    def commit_both(self) -> None:
        self._commit("main", self.main)
        self._commit("dev", self.dev)

    def merge(self) -> tuple[float, dict[str, Any], int, int]:
        before = _files(self.root)
        started = time.perf_counter()
        result = self.store.merge("dev", "main")
        elapsed = time.perf_counter() - started
        [detail] = result.details
        if detail.action is not MergeAction.REPLAYED:
            raise RuntimeError(f"expected a replay, got {detail.to_dict()}")
        new = {f: s for f, s in _files(self.root).items() if f not in before}
        data = sum(s for f, s in new.items() if "/metadata/" not in f)
        meta = sum(s for f, s in new.items() if "/metadata/" in f)
        return elapsed, detail.statistics, data, meta


def _replay(root: Path, source_snapshots: int, target_snapshots: int) -> dict[str, Any]:
    setup = _Setup(root, "replay")
    started = time.perf_counter()
    for i in range(source_snapshots):
        setup.dev.append(_rows(1_000_000 + i * 10, 10, i % 8))
    for i in range(target_snapshots):
        setup.main.append(_rows(2_000_000 + i * 10, 10, i % 8))
    setup.commit_both()
    write_s = time.perf_counter() - started
    merge_s, stats, data, meta = setup.merge()
    setup.store.close()
    return {
        "replay_source_snapshots": source_snapshots,
        "replay_target_snapshots": target_snapshots,
        "replay_write_commits_s": round(write_s, 3),
        "replay_merge_s": round(merge_s, 3),
        "replay_merge_vs_write_ratio": round(merge_s / write_s, 4) if write_s else None,
        "replay_files_added": stats["replay"]["data_files_added"],
        "replay_manifests_read": stats["manifests_read"],
        "replay_data_bytes_written": data,
        "replay_metadata_bytes_written": meta,
        "replay_under_2s": merge_s < 2.0,
    }


def _wide(root: Path, files: int) -> dict[str, Any]:
    setup = _Setup(root, "wide")
    started = time.perf_counter()
    staging = root / "warehouse" / "staged"
    staging.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = staging / f"part-{i:05d}.parquet"
        pq.write_table(_rows(3_000_000 + i, 1, i % 16), path)
        paths.append(f"file://{path}")
    setup.dev.add_files(paths)  # one snapshot, `files` data files
    setup.main.append(_rows(4_000_000, 10, 1))
    setup.commit_both()
    write_s = time.perf_counter() - started
    merge_s, stats, data, meta = setup.merge()
    setup.store.close()
    return {
        "wide_files": files,
        "wide_write_s": round(write_s, 3),
        "wide_merge_s": round(merge_s, 3),
        "wide_files_added": stats["replay"]["data_files_added"],
        "wide_data_bytes_written": data,
        "wide_metadata_bytes_written": meta,
    }


def run(source_snapshots: int = 200, target_snapshots: int = 50, wide_files: int = 2000,
        **_: Any) -> dict[str, Any]:
    """Run both scenarios in a temp dir; returns one flat dict of figures."""
    root = Path(tempfile.mkdtemp(prefix="lakeversion-bench-merge-"))
    try:
        figures = {"benchmark": "merge"}
        figures.update(_replay(root / "replay", source_snapshots, target_snapshots))
        figures.update(_wide(root / "wide", wide_files))
        figures["data_bytes_written"] = (figures["replay_data_bytes_written"]
                                         + figures["wide_data_bytes_written"])
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - manual runs
    import json

    print(json.dumps(run(), indent=2))
