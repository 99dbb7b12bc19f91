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

from spark_lakeversion.checks.sql import connect as duckdb_connect
from spark_lakeversion.formats.iceberg.content import iceberg_content
from spark_lakeversion.formats.iceberg.merge.plan import IcebergContentMerger
from spark_lakeversion.limits import Limits
from spark_lakeversion.model import Content, Key, MergeAction, MergeResult, Put
from spark_lakeversion.tableformat.merger import MergeContext
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.wiring import open_store
from tests.helpers import apply_changes

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
                    properties: dict[str, str] | None = None,
                    field_ids: bool = True) -> Table:
    """Commit one position-delete (or equality-delete on `id`) file; returns the table.
    `field_ids=False` writes the equality-delete file without its column's field id (as a
    careless writer would: the spec asks for it)."""
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
            "id", pa.int64(), metadata={b"PARQUET:field_id": b"1"} if field_ids else None)]))
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


def scan_rows(location: str) -> list[dict[str, Any]]:
    """The rows at `location`, read with pyiceberg: its scan, except where equality deletes
    are live (its planner refuses them). Then its manifest reader plans and its Arrow reader
    reads each data file with the position deletes of a sequence number at least the file's
    (the reader keeps only those naming the file), and each equality delete of the file's
    partition (or unpartitioned) with a higher sequence number drops the rows whose values
    it lists, matched by field id: the spec's rule, written here apart from the server's."""
    import pyarrow.parquet as pq
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.manifest import DataFileContent
    from pyiceberg.table import FileScanTask

    table = StaticTable.from_metadata(location)
    snapshot = table.current_snapshot()
    if snapshot is None:
        return []
    entries = [e for m in snapshot.manifests(table.io)
               for e in m.fetch_manifest_entry(table.io, discard_deleted=True)]
    equality = [e for e in entries if e.data_file.content == DataFileContent.EQUALITY_DELETES]
    if not equality:
        return table.scan().to_arrow().to_pylist()
    schema = table.schema()
    specs = table.metadata.specs()
    scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
    rows: list[dict[str, Any]] = []
    for data in (e for e in entries if e.data_file.content == DataFileContent.DATA):
        seq = data.sequence_number or 0
        positional = {e.data_file for e in entries
                      if e.data_file.content == DataFileContent.POSITION_DELETES
                      and (e.sequence_number or 0) >= seq}
        read = scan.to_table([FileScanTask(data.data_file, positional)])
        for delete in equality:
            d = delete.data_file
            if (delete.sequence_number or 0) <= seq or (
                    specs[d.spec_id].fields and (d.spec_id, d.partition)
                    != (data.data_file.spec_id, data.data_file.partition)):
                continue
            with table.io.new_input(d.file_path).open() as stream:
                values = pq.read_table(stream)
            by_id = {int(f.metadata[b"PARQUET:field_id"]): f.name for f in values.schema}
            ids = list(d.equality_ids or [])
            gone = set(zip(*(values.column(by_id[i]).to_pylist() for i in ids)))
            names = [schema.find_column_name(i) for i in ids]
            keys = zip(*(read.column(n).to_pylist() for n in names))
            read = read.filter(pa.array([k not in gone for k in keys], pa.bool_()))
        rows += read.to_pylist()
    return rows


# ---- the row-level merge's lake -----------------------------------------------------------
KEYED = Schema(NestedField(1, "id", LongType(), required=True),
               NestedField(2, "a", StringType(), required=False),
               NestedField(3, "b", IntegerType(), required=False),
               identifier_field_ids=[1])
KEYLESS = Schema(NestedField(1, "id", LongType(), required=False),
                 NestedField(2, "a", StringType(), required=False),
                 NestedField(3, "b", IntegerType(), required=False))


def arrow(schema: Schema, rows: list[tuple[int, str, int]]) -> pa.Table:
    fields = [pa.field("id", pa.int64(), nullable=not schema.identifier_field_ids),
              pa.field("a", pa.string()), pa.field("b", pa.int32())]
    return pa.Table.from_pylist([dict(zip(("id", "a", "b"), r, strict=True)) for r in rows],
                                schema=pa.schema(fields))


class RowLake:
    """A store's main and dev over one unpartitioned v2 table of ten rows (ids 1..10), in
    ONE data file, or in `files` data files of consecutive ids: the row merge's tests."""

    def __init__(self, root: Path, keyed: bool, limits: Limits | None = None,
                 properties: dict[str, str] | None = None, files: int = 1) -> None:

        self.schema = KEYED if keyed else KEYLESS
        self.store: VersionStore = open_store(f"sqlite:///{root / 'store.db'}", limits=limits)
        self.catalog = SqlCatalog("lake", uri=f"sqlite:///{root / 'catalog.db'}",
                                  warehouse=f"file://{root / 'warehouse'}")
        self.catalog.create_namespace("db")
        self.root = root
        self.main: Table = self.catalog.create_table(
            "db.t", self.schema, partition_spec=PartitionSpec(),
            properties={"format-version": "2", **(properties or {})})
        self.base = [(i, f"a{i}", i) for i in range(1, 11)]
        for i in range(files):
            self.main.append(arrow(self.schema, self.base[i * 10 // files:(i + 1) * 10 // files]))
        self.store.commit("main", [Put(KEY, content(self.main))], message="base")
        self.store.create_ref("dev", from_ref="main")
        self.dev: Table = self.catalog.register_table("db.dev", self.main.metadata_location)

    def update(self, table: Table, row: tuple[int, str, int]) -> None:
        """Copy-on-write UPDATE of one id: the file rewritten without it, the new row added."""
        table.delete(f"id = {row[0]}")
        table.append(arrow(self.schema, [row]))

    def commit(self, ref: str, table: Table) -> None:
        table.refresh()
        self.store.commit(ref, [Put(KEY, content(table))], message=f"{ref} change")

    def location(self, ref: str = "main") -> str:
        c = self.store.get_content(ref, KEY)
        assert c is not None
        return str(c.fields["metadata_location"])

    def rows(self, ref: str = "main", duckdb: bool = True) -> list[tuple[Any, ...]]:
        """The rows at `ref`, read by pyiceberg (`scan_rows`) and by DuckDB (both must
        agree). `duckdb=False` for tables DuckDB 1.4.4 misreads: when an equality delete
        removes every row of a data file, its scan also drops the rows of the files it
        scanned before that one."""
        location = self.location(ref)
        by_pyiceberg = sorted(tuple(r.values()) for r in scan_rows(location))
        if not duckdb:
            return by_pyiceberg
        con = duckdb_connect()
        try:
            # one thread: DuckDB 1.4.4's scan of equality deletes sometimes fails on several
            # ("Pipeline batch index - gotten lower batch index")
            con.execute("SET threads TO 1")
            by_duckdb = sorted(con.execute(
                f"SELECT id, a, b FROM iceberg_scan('{location.removeprefix('file://')}')"
            ).fetchall())
        finally:
            con.close()
        assert by_pyiceberg == by_duckdb
        return by_pyiceberg

    def files_on_disk(self) -> set[str]:
        return {str(p) for p in (self.root / "warehouse").rglob("*") if p.is_file()}


def row_merged(result: MergeResult) -> dict[str, Any]:
    """The statistics of a merge that went down to rows and wrote one snapshot."""
    assert result.successful, result.conflicts
    [detail] = result.details
    assert detail.action is MergeAction.REPLAYED
    stats = detail.statistics["row_merge"]
    assert stats["file_conflicts"]
    return dict(stats)


def expected(base: list[tuple[int, str, int]], *changes: dict[int, tuple[int, str, int] | None]
             ) -> list[tuple[Any, ...]]:
    """`base` with each change applied by id (None: deleted), sorted."""
    return apply_changes(base, *changes)
