"""`formats/iceberg/staged.py`: paths a client staged under the server's prefix become the
`DataFile`s pyiceberg's writer would have recorded, from the files alone; anything else
is refused with a typed error naming only the client's value, and nothing is deleted.

Real files throughout: pyiceberg appends to real tables (its manifests are the reference),
the staged files are its very data files copied under the staging prefix or Parquet
files written as Spark's Iceberg writer writes them (field ids in `PARQUET:field_id`)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io import FileIO, InputFile, OutputFile
from pyiceberg.io.pyarrow import schema_to_pyarrow, write_file
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionFieldValue, PartitionKey, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, WriteTask
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    IdentityTransform,
    MonthTransform,
    TruncateTransform,
)
from pyiceberg.typedef import Record
from pyiceberg.types import (
    DoubleType,
    ListType,
    LongType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from spark_lakeversion.errors import (
    InvalidInput,
    LocationNotAllowed,
    TooLarge,
    UnsupportedTableFeature,
)
from spark_lakeversion.fileio import FileIOConfig, pyiceberg_file_io
from spark_lakeversion.formats.iceberg.staged import MAX_FOOTER_BYTES, staged_data_files
from tests.s3.helpers import MotoS3

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "region", StringType(), required=False),
    NestedField(3, "ts", TimestamptzType(), required=False),
    NestedField(4, "amount", DoubleType(), required=False),
)
UTC = dt.timezone.utc
DAY1 = dt.datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
DAY2 = dt.datetime(2024, 3, 2, 23, 59, tzinfo=UTC)

#: every DataFile field pyiceberg's writer fills and its manifests keep
FIELDS = ("content", "file_format", "partition", "record_count", "file_size_in_bytes",
          "column_sizes", "value_counts", "null_value_counts", "nan_value_counts",
          "lower_bounds", "upper_bounds", "split_offsets", "sort_order_id", "equality_ids",
          "key_metadata", "spec_id")


def rows(*items: tuple[int, str | None, dt.datetime | None, float | None]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"id": i, "region": r, "ts": t, "amount": a} for i, r, t, a in items],
        schema=schema_to_pyarrow(SCHEMA, include_field_ids=False))


class Lake:
    """A pyiceberg SQL catalog whose warehouse is `warehouse` (a local dir or an S3 bucket)."""

    def __init__(self, root: Path, warehouse: str, **io: str) -> None:
        self.catalog = SqlCatalog("lake", uri=f"sqlite:///{root / 'catalog.db'}",
                                  warehouse=warehouse, **io)
        self.catalog.create_namespace("db")
        self.io_config = FileIOConfig(io)

    def table(self, name: str, spec: PartitionSpec | None = None,
              schema: Schema = SCHEMA, **properties: str) -> Table:
        return self.catalog.create_table(f"db.{name}", schema,
                                         partition_spec=spec or PartitionSpec(),
                                         properties=properties)

    def io(self, table: Table) -> FileIO:
        """The server's FileIO for the table (never the table's own)."""
        io: FileIO = pyiceberg_file_io(table.metadata.location, self.io_config)
        return io


def issued_prefix(table: Table) -> str:
    """What the server issues: `<data location>/lv-rowmerge-<token>/`."""
    return f"{table.metadata.location}/data/lv-rowmerge-{uuid.uuid4().hex[:8]}/"


def appended_files(table: Table, data: pa.Table) -> list[DataFile]:
    """pyiceberg appends `data`; the DataFiles its manifests record for that append."""
    table.append(data)
    return recorded_files(table)


def recorded_files(table: Table) -> list[DataFile]:
    """The DataFiles the current snapshot's manifests record as added by it (each with its
    manifest's spec id, which the manifest, not the entry, carries)."""
    snapshot = table.current_snapshot()
    assert snapshot is not None
    found = []
    for manifest in snapshot.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io):
            if entry.snapshot_id == snapshot.snapshot_id:
                entry.data_file.spec_id = manifest.partition_spec_id
                found.append(entry.data_file)
    return found


def written_files(table: Table, parts: list[tuple[pa.Table, list[Any]]]) -> list[DataFile]:
    """pyiceberg's writer (`write_file`, one task per partition, values as its
    `_determine_partitions` hands them over) then a fast append: what its manifests record.
    (Its `append` computes temporal transforms with pyiceberg-core, not installed here.)"""
    spec, schema = table.spec(), table.schema()
    tasks = [WriteTask(write_uuid=uuid.uuid4(), task_id=n, schema=schema,
                       record_batches=data.to_batches(),
                       partition_key=PartitionKey(
                           field_values=[PartitionFieldValue(field, value) for field, value
                                         in zip(spec.fields, values, strict=True)],
                           partition_spec=spec, schema=schema))
             for n, (data, values) in enumerate(parts)]
    files = list(write_file(table.io, table.metadata, iter(tasks)))
    with table.transaction() as tx, tx.update_snapshot().fast_append() as append:
        for data_file in files:
            append.append_data_file(data_file)
    return recorded_files(table)


def copy_into(io: FileIO, source: str, target: str) -> str:
    with io.new_input(source).open() as stream:
        data = stream.read()
    with io.new_output(target).create(overwrite=False) as out:
        out.write(data)
    return target


def write_parquet(io: FileIO, location: str, data: pa.Table) -> str:
    """A Parquet file as Spark's Iceberg writer leaves one: whatever ids `data` carries."""
    with io.new_output(location).create(overwrite=False) as out:
        pq.write_table(data, out)
    return location


def spark_like(data: pa.Table, schema: Schema = SCHEMA) -> pa.Table:
    """`data` with the table's field ids in `PARQUET:field_id`, as Iceberg's writer has it."""
    return data.cast(schema_to_pyarrow(schema))


class WatchedIO(FileIO):
    """The server's FileIO, counting the bytes read through it; writing or deleting fails
    the test (`staged_data_files` does neither)."""

    def __init__(self, inner: FileIO) -> None:
        super().__init__(inner.properties)
        self.inner = inner
        self.bytes_read = 0

    def new_input(self, location: str) -> InputFile:
        return _WatchedInput(self, self.inner.new_input(location))

    def new_output(self, location: str) -> OutputFile:
        raise AssertionError(f"wrote {location}")

    def delete(self, location: str | InputFile | OutputFile) -> None:
        raise AssertionError(f"deleted {location}")


class _WatchedInput(InputFile):
    def __init__(self, io: WatchedIO, inner: InputFile) -> None:
        super().__init__(inner.location)
        self.io, self.inner = io, inner

    def __len__(self) -> int:
        return len(self.inner)

    def exists(self) -> bool:
        return self.inner.exists()

    def open(self, seekable: bool = True) -> Any:
        return _Counted(self.io, self.inner.open(seekable=seekable))


class _Counted:
    def __init__(self, io: WatchedIO, inner: Any) -> None:
        self.io, self.inner = io, inner

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.inner.read(size)
        self.io.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self.inner.seek(offset, whence))

    def tell(self) -> int:
        return int(self.inner.tell())

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return bool(self.inner.closed)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def footer_bytes(io: FileIO, location: str) -> int:
    """What reading a file's magic bytes and footer alone costs: 4 + 8 + footer length."""
    size = len(io.new_input(location))
    with io.new_input(location).open() as stream:
        stream.seek(size - 8)
        return 12 + int.from_bytes(stream.read(4), "little")


def assert_same(ours: DataFile, theirs: DataFile, file_path: str) -> None:
    assert ours.file_path == file_path
    for name in FIELDS:
        assert getattr(ours, name) == getattr(theirs, name), name


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path, f"file://{tmp_path / 'warehouse'}")


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---- the DataFile is what pyiceberg's writer records --------------------------------------------
def test_unpartitioned_file_is_described_as_pyiceberg_recorded_it(lake: Lake) -> None:
    table = lake.table("plain")
    io = lake.io(table)
    [theirs] = appended_files(table, rows((1, "eu", DAY1, 1.5), (2, None, DAY2, None),
                                          (3, "us", None, float("nan"))))
    prefix = issued_prefix(table)
    staged = copy_into(io, theirs.file_path, prefix + "00000-0-a.parquet")

    [ours] = staged_data_files(io, table.metadata, prefix, [staged])

    assert_same(ours, theirs, staged)
    assert ours.content == DataFileContent.DATA and ours.file_format == FileFormat.PARQUET
    assert ours.record_count == 3 and ours.partition == Record()
    assert ours.null_value_counts[2] == 1 and ours.lower_bounds[1] == (1).to_bytes(8, "little")


@pytest.mark.parametrize("properties", [{}, {"write.metadata.metrics.default": "none"}],
                         ids=["default-metrics", "no-metrics"])
def test_identity_and_day_partitions_are_derived_from_each_file(
        lake: Lake, properties: dict[str, str]) -> None:
    """Four files of pyiceberg's append, one per (region, day): each gets its own partition
    and stats, even where the table keeps no bounds (then only the footer can say)."""
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region"),
                         PartitionField(3, 1001, DayTransform(), "ts_day"))
    table = lake.table("parts", spec, **properties)
    io = lake.io(table)
    theirs = written_files(table, [
        (rows((1, "eu", DAY1, 1.0), (2, "eu", DAY1 + dt.timedelta(hours=3), 2.0)), ["eu", 19783]),
        (rows((3, "us", DAY1, 3.0)), ["us", 19783]),
        (rows((4, "eu", DAY2, 4.0)), ["eu", 19784]),
        (rows((5, "us", DAY2, None), (6, "us", DAY2, 0.5)), ["us", 19784])])
    assert len(theirs) == 4
    prefix = issued_prefix(table)
    staged = [copy_into(io, f.file_path, f"{prefix}f{n}.parquet") for n, f in enumerate(theirs)]

    watched = WatchedIO(io)
    ours = staged_data_files(watched, table.metadata, prefix, staged)

    for mine, reference, path in zip(ours, theirs, staged, strict=True):
        assert_same(mine, reference, path)
    assert watched.bytes_read == sum(footer_bytes(io, path) for path in staged)  # footers only
    assert {(f.partition[0], f.partition[1]) for f in ours} == {
        ("eu", 19783), ("us", 19783), ("eu", 19784), ("us", 19784)}
    if properties:
        assert all(not f.lower_bounds and not f.value_counts for f in ours)


def test_truncate_and_month_partitions_from_the_bounds(lake: Lake) -> None:
    """Values differing past the truncation width, times within one month: one partition,
    as pyiceberg's writer records it; a file reaching into the next month is refused."""
    spec = PartitionSpec(PartitionField(2, 1000, TruncateTransform(2), "region_trunc"),
                         PartitionField(3, 1001, MonthTransform(), "ts_month"))
    table = lake.table("trunc", spec)
    io = lake.io(table)
    [theirs] = written_files(table, [(rows((1, "eu-west", DAY1, 1.0), (2, "eu-north", DAY2, 2.0)),
                                      ["eu", 650])])
    prefix = issued_prefix(table)
    staged = copy_into(io, theirs.file_path, prefix + "t.parquet")
    [ours] = staged_data_files(io, table.metadata, prefix, [staged])
    assert_same(ours, theirs, staged)
    assert ours.partition == Record("eu", 650)  # months since 1970-01: 2024-03

    april = write_parquet(io, prefix + "april.parquet", spark_like(
        rows((1, "eu", DAY1, 1.0), (2, "eu", dt.datetime(2024, 4, 1, tzinfo=UTC), 1.0))))
    with pytest.raises(InvalidInput, match="partition field 'ts_month'"):
        staged_data_files(io, table.metadata, prefix, [april])


def test_bucket_partition_reads_the_source_column(lake: Lake) -> None:
    spec = PartitionSpec(PartitionField(1, 1000, BucketTransform(4), "id_bucket"))
    table = lake.table("buckets", spec)
    io = lake.io(table)
    bucket = BucketTransform(4).transform(LongType())
    same = [i for i in range(200) if bucket(i) == bucket(0)][:5]
    other = next(i for i in range(200) if bucket(i) != bucket(0))
    prefix = issued_prefix(table)
    one = write_parquet(io, prefix + "one.parquet",
                        spark_like(rows(*[(i, "eu", DAY1, 1.0) for i in same])))
    two = write_parquet(io, prefix + "two.parquet",
                        spark_like(rows((same[0], "eu", DAY1, 1.0), (other, "eu", DAY1, 1.0))))

    watched = WatchedIO(io)
    [ours] = staged_data_files(watched, table.metadata, prefix, [one])
    assert ours.partition == Record(bucket(0)) and ours.spec_id == spec.spec_id
    assert watched.bytes_read > footer_bytes(io, one)  # the id column was read too
    assert ours.record_count == 5

    with pytest.raises(InvalidInput) as refused:
        staged_data_files(io, table.metadata, prefix, [two])
    assert type(refused.value) is InvalidInput
    assert "more than one partition" in refused.value.message
    assert "'id_bucket'" in refused.value.message


@pytest.mark.parametrize("data", [
    rows((1, "eu", DAY1, 1.0), (2, "eu", DAY2, 1.0)),  # two days by the footer's bounds
    rows((1, "eu", DAY1, 1.0), (2, "eu", None, 1.0)),  # a day and null: bounds see one day
], ids=["two-days", "day-and-null"])
def test_a_file_spanning_two_partitions_is_refused(lake: Lake, data: pa.Table) -> None:
    spec = PartitionSpec(PartitionField(3, 1000, DayTransform(), "ts_day"))
    table = lake.table("span", spec)
    io = lake.io(table)
    prefix = issued_prefix(table)
    path = write_parquet(io, prefix + "span.parquet", spark_like(data))

    with pytest.raises(InvalidInput) as refused:
        staged_data_files(io, table.metadata, prefix, [path])

    assert type(refused.value) is InvalidInput
    assert refused.value.message == (
        f"staged file {path!r} holds rows of more than one partition (partition field "
        "'ts_day'): each file must lie in one")


def test_identity_on_a_double_reads_the_column_and_all_null_is_the_null_partition(
        lake: Lake) -> None:
    """NaN lies outside a footer's bounds: a double source column is read; a column of
    nulls only is the null partition (bounds say so without reading)."""
    spec = PartitionSpec(PartitionField(4, 1000, IdentityTransform(), "amount"),
                         PartitionField(2, 1001, IdentityTransform(), "region"))
    table = lake.table("floats", spec)
    io = lake.io(table)
    prefix = issued_prefix(table)
    nan = write_parquet(io, prefix + "nan.parquet", spark_like(
        rows((1, None, DAY1, 2.5), (2, None, DAY1, float("nan")))))
    one = write_parquet(io, prefix + "one.parquet", spark_like(
        rows((1, None, DAY1, 2.5), (2, None, DAY2, 2.5))))

    with pytest.raises(InvalidInput, match="more than one partition"):
        staged_data_files(io, table.metadata, prefix, [nan])
    [ours] = staged_data_files(io, table.metadata, prefix, [one])
    assert ours.partition == Record(2.5, None)


def test_a_non_default_spec_is_honoured(lake: Lake) -> None:
    table = lake.table("evolved")
    with table.update_spec() as update:
        update.add_identity("region")
    metadata = table.refresh().metadata
    io = lake.io(table)
    prefix = issued_prefix(table)
    path = write_parquet(io, prefix + "x.parquet", spark_like(rows((1, "eu", DAY1, 1.0))))

    [old] = staged_data_files(io, metadata, prefix, [path], spec_id=0)
    [new] = staged_data_files(io, metadata, prefix, [path])
    assert (old.spec_id, old.partition) == (0, Record())
    assert (new.spec_id, new.partition) == (metadata.default_spec_id, Record("eu"))
    assert metadata.default_spec_id != 0


# ---- the schema: Iceberg field ids matching the table's ---------------------------------------
def _schema_refusal(lake: Lake, data: pa.Table) -> str:
    table = lake.table(f"s{uuid.uuid4().hex[:6]}")
    io = lake.io(table)
    prefix = issued_prefix(table)
    path = write_parquet(io, prefix + "bad.parquet", data)
    with pytest.raises(InvalidInput) as refused:
        staged_data_files(io, table.metadata, prefix, [path])
    assert type(refused.value) is InvalidInput
    assert refused.value.message.startswith(f"staged file {path!r} ")
    return refused.value.message


def _field(name: str, kind: pa.DataType, field_id: int, nullable: bool = True) -> pa.Field:
    return pa.field(name, kind, nullable=nullable,
                    metadata={b"PARQUET:field_id": str(field_id).encode()})


def test_a_file_without_field_ids_is_refused(lake: Lake) -> None:
    message = _schema_refusal(lake, rows((1, "eu", DAY1, 1.0)))
    assert "carries no Iceberg field id (PARQUET:field_id) for amount, id, region, ts" in message


def test_a_field_id_with_another_type_is_refused(lake: Lake) -> None:
    data = pa.table({"id": pa.array([1], pa.int32())},
                    schema=pa.schema([_field("id", pa.int32(), 1, nullable=False)]))
    message = _schema_refusal(lake, data)
    assert message.endswith("has field id 1 as int, where the table has long")


def test_a_field_id_the_table_lacks_is_refused(lake: Lake) -> None:
    data = pa.table([pa.array([1], pa.int64()), pa.array(["x"])], schema=pa.schema([
        _field("id", pa.int64(), 1, nullable=False), _field("secret", pa.string(), 99)]))
    message = _schema_refusal(lake, data)
    assert "has field id 99 ('secret'), which the table's current schema does not have" \
        in message


def test_a_missing_or_optional_required_field_is_refused(lake: Lake) -> None:
    lacking = pa.table([pa.array(["eu"])], schema=pa.schema([_field("region", pa.string(), 2)]))
    assert _schema_refusal(lake, lacking).endswith("lacks required field id 1 ('id')")
    optional = pa.table([pa.array([1], pa.int64())],
                        schema=pa.schema([_field("id", pa.int64(), 1, nullable=True)]))
    assert _schema_refusal(lake, optional).endswith(
        "has field id 1 as optional; the table requires it")


def test_optional_columns_may_be_absent(lake: Lake) -> None:
    """Iceberg reads a column a file lacks as null: only `id` is required."""
    table = lake.table("narrow", PartitionSpec(PartitionField(2, 1000, IdentityTransform(),
                                                             "region")))
    io = lake.io(table)
    prefix = issued_prefix(table)
    data = pa.table([pa.array([1, 2], pa.int64())],
                    schema=pa.schema([_field("id", pa.int64(), 1, nullable=False)]))
    path = write_parquet(io, prefix + "narrow.parquet", data)
    [ours] = staged_data_files(io, table.metadata, prefix, [path])
    assert ours.partition == Record(None) and ours.record_count == 2
    assert set(ours.value_counts) == {1}


NESTED = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "s", StructType(NestedField(3, "x", LongType(), required=False),
                                   NestedField(4, "y", StringType(), required=True)),
                required=False),
    NestedField(5, "tags", ListType(6, StringType(), element_required=False), required=False),
)


def test_nested_sources_lists_and_a_moved_field_id(lake: Lake) -> None:
    """Partition sources inside a struct are found by id (bounds for identity, the column
    read for bucket); a list's element id is checked like any other; an id the file puts
    under another parent is refused."""
    spec = PartitionSpec(PartitionField(4, 1000, IdentityTransform(), "s_y"),
                         PartitionField(3, 1001, BucketTransform(8), "s_x_bucket"))
    table = lake.table("nested", spec, schema=NESTED)
    io = lake.io(table)
    prefix = issued_prefix(table)
    bucket = BucketTransform(8).transform(LongType())
    xs = [x for x in range(100) if bucket(x) == bucket(7)][:3]
    data = pa.Table.from_pylist(
        [{"id": n, "s": {"x": x, "y": "k"}, "tags": ["a", None]} for n, x in enumerate(xs)],
        schema=schema_to_pyarrow(table.schema()))  # the catalog assigned fresh ids
    path = write_parquet(io, prefix + "nested.parquet", data)

    [ours] = staged_data_files(io, table.metadata, prefix, [path])
    assert ours.partition == Record("k", bucket(7))
    element = table.schema().find_field("tags.element").field_id
    assert ours.value_counts[element] == 6 and ours.null_value_counts[element] == 3

    x_id = table.schema().find_field("s.x").field_id
    moved = pa.table([pa.array([1], pa.int64()), pa.array([5], pa.int64())], schema=pa.schema([
        _field("id", pa.int64(), 1, nullable=False), _field("x", pa.int64(), x_id)]))
    bad = write_parquet(io, prefix + "moved.parquet", moved)
    with pytest.raises(InvalidInput) as refused:
        staged_data_files(io, table.metadata, prefix, [bad])
    assert refused.value.message == (f"staged file {bad!r} has field id {x_id} ('x') in "
                                     "another place than the table has it")


# ---- the paths ------------------------------------------------------------------------------
@pytest.fixture
def staged(lake: Lake) -> Iterator[tuple[Table, FileIO, str, str]]:
    """A table, the server's io, the issued prefix and one good staged file in it."""
    table = lake.table("paths")
    io = lake.io(table)
    prefix = issued_prefix(table)
    path = write_parquet(io, prefix + "good.parquet", spark_like(rows((1, "eu", DAY1, 1.0))))
    yield table, io, prefix, path


def _outside(prefix: str) -> str:
    return prefix.rstrip("/") + "-other/x.parquet"


@pytest.mark.parametrize("make, error, words", [
    (lambda p, g: _outside(p), LocationNotAllowed, "is outside the staging location"),
    (lambda p, g: p.rsplit("/", 3)[0] + "/x.parquet", LocationNotAllowed, "is outside"),
    (lambda p, g: (p + "x.parquet").replace("file://", "s3://b"), LocationNotAllowed, "is outside"),
    (lambda p, g: p + "../../x.parquet", InvalidInput, "'.' or '..' path segment"),
    (lambda p, g: p + "%2e%2e/%2E%2E/x.parquet", InvalidInput, "'.' or '..' path segment"),
    (lambda p, g: p + "%252e%252e/x.parquet", InvalidInput, "'.' or '..' path segment"),
    (lambda p, g: p + "a%2F..%2Fx.parquet", InvalidInput, "'.' or '..' path segment"),
    (lambda p, g: p + "./good.parquet", InvalidInput, "'.' or '..' path segment"),
    (lambda p, g: p + "/good.parquet", InvalidInput, "empty path segment"),
    (lambda p, g: g + "?x=1.parquet", InvalidInput, "may not contain"),
    (lambda p, g: g + "#.parquet", InvalidInput, "may not contain"),
    (lambda p, g: p + "a\nb.parquet", InvalidInput, "may not contain"),
    (lambda p, g: p + "a%0ab.parquet", InvalidInput, "encodes a control character"),
    (lambda p, g: p + "a%zz.parquet", InvalidInput, "starts no %XX escape"),
    (lambda p, g: p + "good.txt", InvalidInput, "is not a .parquet file"),
    (lambda p, g: p + "sub/", InvalidInput, "names a directory"),
    (lambda p, g: p + "missing.parquet", InvalidInput, "does not exist"),
    (lambda p, g: "relative/x.parquet", InvalidInput, "must be an absolute location"),
], ids=["sibling", "table-dir", "other-scheme", "dotdot", "encoded-dotdot",
        "double-encoded-dotdot", "encoded-slash-dotdot", "dot", "double-slash", "query",
        "fragment", "control", "encoded-control", "bad-escape", "not-parquet-name",
        "directory", "missing", "relative"])
def test_a_bad_path_is_refused_with_its_typed_error(
        staged: tuple[Table, FileIO, str, str], tmp_path: Path,
        make: Any, error: type[InvalidInput], words: str) -> None:
    table, io, prefix, good = staged
    before = files_under(tmp_path)
    bad = make(prefix, good)

    with pytest.raises(InvalidInput) as refused:
        staged_data_files(io, table.metadata, prefix, [good, bad])

    assert type(refused.value) is error
    assert refused.value.message.startswith(f"staged file {bad!r} ")
    assert words in refused.value.message
    assert files_under(tmp_path) == before  # nothing written, nothing deleted


@pytest.mark.parametrize("value, words", [
    (42, "staged file #1 must be a string, not int"),
    (None, "staged file #1 must be a string, not NoneType"),
    (["x"], "staged file #1 must be a string, not list"),
    ("", "staged file #1 is empty"),
])
def test_a_path_that_is_not_a_string_is_refused(
        staged: tuple[Table, FileIO, str, str], value: object, words: str) -> None:
    table, io, prefix, good = staged
    with pytest.raises(InvalidInput) as refused:
        staged_data_files(io, table.metadata, prefix, [good, value])
    assert type(refused.value) is InvalidInput and refused.value.message == words


def test_duplicates_in_any_spelling_and_not_a_list_are_refused(
        staged: tuple[Table, FileIO, str, str]) -> None:
    table, io, prefix, good = staged
    local = good[len("file://"):]
    for twice in ([good, good], [good, "file:" + local], [good, local]):
        with pytest.raises(InvalidInput) as refused:
            staged_data_files(io, table.metadata, prefix, twice)
        assert type(refused.value) is InvalidInput
        assert refused.value.message == f"staged file {twice[1]!r} is listed twice"
    with pytest.raises(InvalidInput, match="must be a list of paths"):
        staged_data_files(io, table.metadata, prefix, good)  # a str is a Sequence too


def test_spellings_of_one_file_are_recorded_in_the_issued_prefix_spelling(
        staged: tuple[Table, FileIO, str, str]) -> None:
    table, io, prefix, good = staged
    local = good[len("file://"):]
    for spelling in (good, "file:" + local, local):
        [ours] = staged_data_files(io, table.metadata, prefix, [spelling])
        assert ours.file_path == good


def test_more_files_than_allowed_is_too_large(staged: tuple[Table, FileIO, str, str]) -> None:
    table, io, prefix, good = staged
    with pytest.raises(TooLarge, match="2 staged files: at most 1 per request"):
        staged_data_files(io, table.metadata, prefix, [good, prefix + "b.parquet"], max_files=1)
    assert staged_data_files(io, table.metadata, prefix, []) == []


def test_a_file_that_is_not_parquet_is_refused(staged: tuple[Table, FileIO, str, str]) -> None:
    table, io, prefix, good = staged
    fake = prefix + "fake.parquet"
    with io.new_output(fake).create() as out:
        out.write(b"PAR1" + b"\0" * 64 + b"not parquet at all")
    truncated = prefix + "cut.parquet"
    with io.new_input(good).open() as stream:
        data = stream.read()
    with io.new_output(truncated).create() as out:
        out.write(data[:-9] + b"PAR1")  # magic at both ends, footer length garbage
    huge = prefix + "huge.parquet"
    with io.new_output(huge).create() as out:
        out.write(b"PAR1" + b"\0" * 64 + (MAX_FOOTER_BYTES + 1).to_bytes(4, "little") + b"PAR1")
    with pytest.raises(TooLarge, match=f"has a footer over {MAX_FOOTER_BYTES} bytes"):
        staged_data_files(io, table.metadata, prefix, [huge])
    for path in (fake, truncated):
        with pytest.raises(InvalidInput) as refused:
            staged_data_files(io, table.metadata, prefix, [path])
        assert type(refused.value) is InvalidInput
        assert refused.value.message == f"staged file {path!r} is not a Parquet file"
        assert io.new_input(path).exists()  # never deleted


def test_a_symlink_leading_out_of_the_prefix_is_refused(
        staged: tuple[Table, FileIO, str, str], tmp_path: Path) -> None:
    table, io, prefix, good = staged
    elsewhere = tmp_path / "secret.parquet"
    elsewhere.write_bytes(Path(good[len("file://"):]).read_bytes())
    link = prefix + "link.parquet"
    os.symlink(elsewhere, link[len("file://"):])
    with pytest.raises(LocationNotAllowed, match="is outside the staging location"):
        staged_data_files(io, table.metadata, prefix, [link])
    directory = Path(prefix[len("file://"):]) / "sub"
    directory.mkdir()
    with pytest.raises(InvalidInput, match="does not exist or is not a regular file"):
        staged_data_files(io, table.metadata, prefix, [prefix + "sub/x.parquet"])


def test_an_unknown_transform_is_an_unsupported_feature(lake: Lake) -> None:
    from pyiceberg.transforms import UnknownTransform

    table = lake.table("odd")
    io = lake.io(table)
    spec = PartitionSpec(PartitionField(1, 1000, UnknownTransform("zorder"), "z"), spec_id=7)
    metadata = table.metadata.model_copy(update={"partition_specs": [
        *table.metadata.partition_specs, spec]})
    prefix = issued_prefix(table)
    path = write_parquet(io, prefix + "x.parquet", spark_like(rows((1, "eu", DAY1, 1.0))))
    with pytest.raises(UnsupportedTableFeature, match="'z' uses a transform this server cannot"):
        staged_data_files(io, metadata, prefix, [path], spec_id=7)


# ---- S3 ---------------------------------------------------------------------------------------
def test_s3_staged_files_match_pyiceberg_and_stay_in_their_bucket(
        moto_s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    bucket, other = moto_s3.bucket(), moto_s3.bucket()
    lake = Lake(tmp_path, f"s3://{bucket}/wh", **moto_s3.io())
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region"))
    table = lake.table("t", spec)
    io = lake.io(table)
    theirs = appended_files(table, rows((1, "eu", DAY1, 1.0), (2, "us", DAY2, 2.0)))
    prefix = issued_prefix(table)
    staged = [copy_into(io, f.file_path, f"{prefix}{n}.parquet") for n, f in enumerate(theirs)]
    s3a = staged[1].replace("s3://", "s3a://")

    ours = staged_data_files(io, table.metadata, prefix, [staged[0], s3a])

    for mine, reference, path in zip(ours, theirs, staged, strict=True):
        assert_same(mine, reference, path)
    elsewhere = staged[0].replace(f"s3://{bucket}/", f"s3://{other}/")
    moto_s3.put(other, elsewhere.split("/", 3)[3], b"PAR1")
    with pytest.raises(LocationNotAllowed, match="is outside the staging location"):
        staged_data_files(io, table.metadata, prefix, [elsewhere])
    with pytest.raises(InvalidInput, match="does not exist"):
        staged_data_files(io, table.metadata, prefix, [prefix + "missing.parquet"])
    keys = moto_s3.keys(bucket, prefix.split("/", 3)[3])
    assert keys == {path.split("/", 3)[3] for path in staged}  # nothing deleted


# ---- Spark's Iceberg writer ---------------------------------------------------------------------
def test_files_spark_wrote_pass_and_match_what_its_manifests_record(
        spark: Any, tmp_path: Path) -> None:
    """The files the row merge will stage: Spark's Iceberg writer (parquet-mr), partition
    directories and all, copied under the prefix. What Java's Iceberg recorded for them is
    what we derive (Java adds NaN counts, which a Parquet footer cannot carry). A string
    partition value gets an escaped directory (`region=a+b%2Fc`): `%XX` is accepted."""
    from pyiceberg.table import StaticTable

    name = f"stg{uuid.uuid4().hex[:6]}"
    spark.conf.set(f"spark.sql.catalog.{name}", "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set(f"spark.sql.catalog.{name}.type", "hadoop")
    spark.conf.set(f"spark.sql.catalog.{name}.warehouse", f"file://{tmp_path / 'spark'}")
    spark.sql(f"CREATE TABLE {name}.db.t (id BIGINT NOT NULL, region STRING, ts TIMESTAMP, "
              "amount DOUBLE) USING iceberg PARTITIONED BY (region, days(ts))")
    spark.sql(f"INSERT INTO {name}.db.t VALUES "
              "(1, 'eu', TIMESTAMP '2024-03-01 08:30:00 UTC', 1.0), "
              "(2, 'eu', TIMESTAMP '2024-03-01 10:00:00 UTC', NULL), "
              "(3, 'us', TIMESTAMP '2024-03-02 23:59:00 UTC', 3.5), "
              "(4, 'us', NULL, 4.5), (5, NULL, NULL, 5.5), "
              "(6, 'a b/c', TIMESTAMP '2024-03-01 00:00:00 UTC', 6.5)")
    metadata_dir = tmp_path / "spark" / "db" / "t" / "metadata"
    table = StaticTable.from_metadata(str(sorted(metadata_dir.glob("v*.metadata.json"))[-1]))
    snapshot = table.current_snapshot()
    assert snapshot is not None
    theirs = [entry.data_file for manifest in snapshot.manifests(table.io)
              for entry in manifest.fetch_manifest_entry(table.io)]
    assert len(theirs) == 5
    io = pyiceberg_file_io(table.metadata.location, FileIOConfig({}))
    prefix = issued_prefix(table)
    staged = []
    for data_file in theirs:
        relative = data_file.file_path.split("/data/", 1)[1]  # region=eu/ts_day=.../x.parquet
        target = prefix + relative
        Path(target.removeprefix("file://")).parent.mkdir(parents=True, exist_ok=True)
        staged.append(copy_into(io, data_file.file_path, target))

    watched = WatchedIO(io)
    ours = staged_data_files(watched, table.metadata, prefix, staged)

    assert watched.bytes_read == sum(footer_bytes(io, path) for path in staged)
    for mine, reference, path in zip(ours, theirs, staged, strict=True):
        assert mine.file_path == path
        for field in ("content", "file_format", "partition", "record_count",
                      "file_size_in_bytes", "column_sizes", "value_counts",
                      "null_value_counts", "lower_bounds", "upper_bounds", "split_offsets"):
            assert getattr(mine, field) == getattr(reference, field), field
        assert mine.spec_id == table.metadata.default_spec_id
    assert {(f.partition[0], f.partition[1]) for f in ours} == {
        ("eu", 19783), ("us", 19784), ("us", None), (None, None), ("a b/c", 19783)}
    assert any("/region=a+b%2Fc/" in path for path in staged)  # Iceberg's escaped directory
