"""Shared helpers for the Iceberg content-merge tests: real pyiceberg tables on branches.

A "branch" of a table is a second catalog registration of the same metadata file: both
chains then write new metadata files (same table uuid, same directories), exactly as two
store branches pointing at one Iceberg table do.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import StaticTable, Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import IntegerType, LongType, NestedField, StringType

from spark_lakeversion.formats.iceberg.content import iceberg_content
from spark_lakeversion.formats.iceberg.merge.plan import IcebergContentMerger
from spark_lakeversion.model import Content, Key
from spark_lakeversion.tableformat.merger import MergeContext

ID_P_V_ICEBERG = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "p", IntegerType(), required=False),
    NestedField(3, "v", StringType(), required=False),
)
SPEC = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "p"))
ARROW = pa.schema([("id", pa.int64()), ("p", pa.int32()), ("v", pa.string())])
KEY = Key(("db", "t"))


class TableBranches:
    """A SQLite-backed pyiceberg catalog in a temp dir, with table "branches"."""

    def __init__(self, root: Path, partitioned: bool = True, format_version: int = 2,
                 properties: dict[str, str] | None = None) -> None:
        self.root = root
        self.catalog = SqlCatalog("lake", uri=f"sqlite:///{root / 'catalog.db'}",
                                  warehouse=f"file://{root / 'warehouse'}")
        self.catalog.create_namespace("db")
        self.ids = itertools.count(1)
        self.names = itertools.count(1)
        self.main = self.catalog.create_table(
            "db.t", ID_P_V_ICEBERG, partition_spec=SPEC if partitioned else PartitionSpec(),
            properties={"format-version": str(format_version), **(properties or {})})

    def branch(self, table: Table) -> Table:
        """A new writable chain starting at `table`'s current metadata file."""
        name = f"db.b{next(self.names)}"
        return self.catalog.register_table(name, table.metadata_location)

    def rows(self, p: int, n: int, tag: str = "") -> pa.Table:
        ids = [next(self.ids) for _ in range(n)]
        return pa.Table.from_pylist([{"id": i, "p": p, "v": f"{tag}{i}"} for i in ids],
                                    schema=ARROW)

    def files_on_disk(self) -> set[str]:
        return {str(p) for p in (self.root / "warehouse").rglob("*") if p.is_file()}

    def data_files_on_disk(self) -> set[str]:
        return {f for f in self.files_on_disk() if f.endswith(".parquet")}


def content(table: Table) -> Content:
    table.refresh() if hasattr(table, "refresh") else None
    return iceberg_content(table.metadata, table.metadata_location)


def ids_at(location: str) -> list[int]:
    return sorted(StaticTable.from_metadata(location).scan().to_arrow().column("id").to_pylist())


def table_rows(location: str) -> list[dict[str, Any]]:
    return sorted(StaticTable.from_metadata(location).scan().to_arrow().to_pylist(),
                  key=lambda r: r["id"])


def plan(base: Content, target: Content, source: Content, **options: Any) -> Any:
    context = MergeContext(source="dev", source_commit="c-source", target="main",
                           target_commit="c-target", options=options)
    return IcebergContentMerger().plan(KEY, base, target, source, context)


def metadata_files(root: Path) -> set[str]:
    return {os.fspath(p) for p in (root / "warehouse").rglob("*.metadata.json")}


# ---- merge-on-read deletes: pyiceberg reads them but cannot write them, so this helper
# commits a row delta (delete files only) with pyiceberg's own manifest/list writers -------
def add_delete_file(table: Table, partition_value: int | None, *,
                    positions: dict[str, list[int]] | None = None,
                    equality_ids: list[int] | None = None,
                    properties: dict[str, str] | None = None) -> Table:
    """Commit one position-delete (or equality-delete on `id`) file; returns the table."""
    import uuid

    import pyarrow.parquet as pq
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.table.refs import SnapshotRefType
    from pyiceberg.table.snapshots import Operation, Snapshot, Summary, update_snapshot_summaries
    from pyiceberg.table.update import AddSnapshotUpdate, AssertRefSnapshotId, SetSnapshotRefUpdate
    from pyiceberg.typedef import Record

    from spark_lakeversion.formats.iceberg.merge.write import _DeleteManifestWriterV2

    md = table.metadata
    io = table.io
    data_dir = f"{md.location}/data"
    path = f"{data_dir}/delete-{uuid.uuid4()}.parquet"
    lower: dict[int, bytes] = {}
    upper: dict[int, bytes] = {}
    if positions is not None:
        content_type = DataFileContent.POSITION_DELETES
        arrow = pa.table({
            "file_path": pa.array([p for p, pos in sorted(positions.items()) for _ in pos]),
            "pos": pa.array([x for _, pos in sorted(positions.items()) for x in pos], pa.int64()),
        })
        paths = sorted(positions)
        lower[2147483546] = paths[0].encode()
        upper[2147483546] = paths[-1].encode()
    else:
        content_type = DataFileContent.EQUALITY_DELETES
        assert equality_ids == [1]
        # the equality columns carry their field ids, as the spec asks of a delete file
        ids = pa.array((properties or {}).pop("ids", "").split(","), pa.string())
        arrow = pa.table([ids.cast(pa.int64())], schema=pa.schema([pa.field(
            "id", pa.int64(), metadata={b"PARQUET:field_id": b"1"})]))
    with io.new_output(path).create(overwrite=True) as out:
        pq.write_table(arrow, out)
    size = len(io.new_input(path))
    spec = md.spec()
    partition = Record(partition_value) if len(spec.fields) else Record()
    delete_file = DataFile.from_args(
        content=content_type, file_path=path, file_format=FileFormat.PARQUET,
        partition=partition, record_count=arrow.num_rows, file_size_in_bytes=size,
        lower_bounds=lower, upper_bounds=upper, equality_ids=equality_ids)
    delete_file.spec_id = spec.spec_id
    snapshot_id = md.new_snapshot_id()
    seq = md.next_sequence_number()
    parent = md.current_snapshot()
    manifest_path = f"{md.location}/metadata/{uuid.uuid4()}-m0.avro"
    with _DeleteManifestWriterV2(spec, md.schema(), io.new_output(manifest_path), snapshot_id,
                                 "gzip") as writer:
        from pyiceberg.manifest import ManifestEntry, ManifestEntryStatus

        writer.add_entry(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED,
                                                 snapshot_id=snapshot_id, data_file=delete_file))
    manifests = [writer.to_manifest_file()] + (parent.manifests(io) if parent else [])
    from pyiceberg.manifest import write_manifest_list

    list_path = f"{md.location}/metadata/snap-{snapshot_id}-0-{uuid.uuid4()}.avro"
    with write_manifest_list(2, io.new_output(list_path), snapshot_id,
                             parent.snapshot_id if parent else None, seq, "gzip") as lw:
        lw.add_manifests(manifests)
    summary = update_snapshot_summaries(
        Summary(Operation.DELETE, **{"added-delete-files": "1"}, **(properties or {})),
        parent.summary if parent else None)
    snapshot = Snapshot(snapshot_id=snapshot_id, parent_snapshot_id=parent.snapshot_id if parent
                        else None, sequence_number=seq, timestamp_ms=md.last_updated_ms + 1,
                        manifest_list=list_path, summary=summary, schema_id=md.current_schema_id)
    table.catalog.commit_table(
        table,
        (AssertRefSnapshotId(ref="main", snapshot_id=parent.snapshot_id if parent else None),),
        (AddSnapshotUpdate(snapshot=snapshot),
         SetSnapshotRefUpdate(ref_name="main", type=SnapshotRefType.BRANCH,
                              snapshot_id=snapshot_id)),
    )
    return table.catalog.load_table(table.name())


def live_data_files(location: str) -> dict[str, int]:
    """Live data file path -> partition value of `p` (first partition field) at a location."""
    table = StaticTable.from_metadata(location)
    return {t.file.file_path: (t.file.partition[0] if len(t.file.partition) else None)
            for t in table.scan().plan_files()}
