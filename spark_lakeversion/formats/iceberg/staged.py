"""Data files a client staged for a merge snapshot, turned into `DataFile`s the server trusts.

A row-level merge run on Spark writes its merged rows as Parquet files with Iceberg's own
writer under a staging prefix the server issued (`<data location>/lv-rowmerge-<token>/`)
and sends back only their paths. Nothing else the client could say is believed: each
path must lie strictly under that prefix (one spelling per file, no `..` however
encoded), exist and be Parquet; the footer, read alone and bounded, must carry Iceberg
field ids matching the table's current schema; the statistics are computed from the
footer by pyiceberg's own writer helpers; and the partition is derived from the data,
so a file spanning two partitions is refused. Nothing is ever written or deleted here.

Why min/max suffice for order-preserving transforms: a footer's bounds are bounds of the
values (a truncated bound still is one), and a monotone transform maps every value
between two bounds with equal images to that image. Float columns (NaN is outside the
bounds), columns without statistics and other transforms read the source column itself.
The footer is the file's own claim, as for pyiceberg's `add_files` and Iceberg's import:
a client that forges it can misplace rows only of a table it may write anyway.
"""

from __future__ import annotations

import math
import os
import re
import stat
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import (
    MetricModeTypes,
    MetricsMode,
    StatisticsCollector,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    pyarrow_to_schema,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec, partition_record_value
from pyiceberg.schema import Schema, index_by_id, sanitize_column_names
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.transforms import UnknownTransform, VoidTransform
from pyiceberg.typedef import Record
from pyiceberg.types import (
    DoubleType,
    FloatType,
    ListType,
    MapType,
    PrimitiveType,
    StructType,
)

from spark_lakeversion.errors import (
    InvalidInput,
    LocationNotAllowed,
    TooLarge,
    UnsupportedTableFeature,
)
from spark_lakeversion.locations import Location, parse_location

#: a footer larger than this is refused unread (Spark's footers are kilobytes to a few MB)
MAX_FOOTER_BYTES = 16 * 1024 * 1024
#: the longest path accepted
MAX_PATH_CHARS = 4096
#: rows per batch when a transform needs the source column read
READ_BATCH_ROWS = 65_536
_MAGIC = b"PAR1"
_ALIASES = {"s3a": "s3", "s3n": "s3"}
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class _Staged:
    """One checked path: as the client sent it (`shown`, the only text messages quote),
    the spelling the `DataFile` records (the issued prefix's), and its local path if any."""

    shown: str
    file_path: str
    local_path: str | None


def staged_data_files(io: FileIO, metadata: TableMetadata, prefix: str, paths: Sequence[object],
                      *, spec_id: int | None = None, max_files: int = 10_000) -> list[DataFile]:
    """The `DataFile`s of the staged files `paths` (untrusted) under the issued `prefix`,
    partitioned by spec `spec_id` (default: the table's default spec), as pyiceberg's
    writer would describe the same files. Every path is checked before any file is opened;
    any refusal is an `InvalidInput` naming only the caller's own value."""
    root = _issued_root(prefix)
    spec = _spec(metadata, spec_id)
    staged = _check_paths(root, prefix, paths, max_files)
    schema = metadata.schema()
    _check_spec_sources(spec, schema)
    writer_schema = sanitize_column_names(schema)  # what pyiceberg's writer names columns
    plan = compute_statistics_plan(writer_schema, metadata.properties)
    return [_data_file(io, metadata, schema, spec, plan, root, item) for item in staged]


# ---- the paths ------------------------------------------------------------------------------
def _issued_root(prefix: str) -> Location:
    """The server's own prefix: a bad one is the server's bug, not the client's input."""
    try:
        root = parse_location(prefix, "staging prefix")
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    if root.path == "/":
        raise ValueError("a staging prefix must not be a bucket or file-system root")
    return root


def _spec(metadata: TableMetadata, spec_id: int | None) -> PartitionSpec:
    wanted = metadata.default_spec_id if spec_id is None else spec_id
    specs = metadata.specs()
    if wanted not in specs:
        raise ValueError(f"the table has no partition spec {wanted}")
    return specs[wanted]


def _check_spec_sources(spec: PartitionSpec, schema: Schema) -> None:
    for field in spec.fields:
        if isinstance(field.transform, UnknownTransform):
            raise UnsupportedTableFeature(
                f"partition field {field.name!r} uses a transform this server cannot compute: "
                "staged files cannot be placed in its partitions")
        try:
            schema.find_field(field.source_id)
        except ValueError:
            raise UnsupportedTableFeature(
                f"partition field {field.name!r} reads column id {field.source_id}, which the "
                "current schema no longer has") from None


def _check_paths(root: Location, prefix: str, paths: Sequence[object],
                 max_files: int) -> list[_Staged]:
    if not isinstance(paths, (list, tuple)):
        raise InvalidInput("staged files must be a list of paths")
    if len(paths) > max_files:
        raise TooLarge(f"{len(paths)} staged files: at most {max_files} per request")
    base = prefix.rstrip("/")
    seen: set[str] = set()
    out: list[_Staged] = []
    for index, value in enumerate(paths):
        relative = _relative(root, value, index)
        if relative in seen:
            raise InvalidInput(f"staged file {value!r} is listed twice")
        seen.add(relative)
        local = f"{root.path}/{relative}" if root.scheme == "file" else None
        out.append(_Staged(str(value), f"{base}/{relative}", local))
    return out


def _relative(root: Location, value: object, index: int) -> str:
    """`value`'s path below `root`, or the refusal saying what is wrong with it."""
    if not isinstance(value, str):
        raise InvalidInput(f"staged file #{index} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidInput(f"staged file #{index} is empty")
    if len(value) > MAX_PATH_CHARS:
        raise TooLarge(f"staged file #{index} is longer than {MAX_PATH_CHARS} characters")
    _check_characters(value)
    scheme, sep, rest = value.partition("://")
    if sep:
        scheme = _ALIASES.get(scheme.lower(), scheme.lower())
        authority, path = ("", rest) if scheme == "file" else _split_authority(rest)
    elif value.startswith("file:/"):
        scheme, authority, path = "file", "", value[len("file:"):]
    elif value.startswith("/"):
        scheme, authority, path = "file", "", value
    else:
        raise InvalidInput(f"staged file {value!r} must be an absolute location")
    if not path.startswith("/"):
        raise InvalidInput(f"staged file {value!r} must be an absolute location")
    if path.endswith("/"):
        raise InvalidInput(f"staged file {value!r} names a directory, not a file")
    for segment in path.split("/")[1:]:
        _check_segment(value, segment)
    if (scheme, authority) != (root.scheme, root.authority) or \
            not path.startswith(root.path + "/"):
        raise LocationNotAllowed(f"staged file {value!r} is outside the staging location "
                                 "this merge was given")
    if not path.endswith(".parquet"):
        raise InvalidInput(f"staged file {value!r} is not a .parquet file")
    return path[len(root.path) + 1:]


def _split_authority(rest: str) -> tuple[str, str]:
    authority, slash, path = rest.partition("/")
    return authority, slash + path


def _check_characters(value: str) -> None:
    bad = sorted({c for c in value if c in "?#\\" or unicodedata.category(c) == "Cc"})
    if bad:
        shown = "".join(c if c in "?#\\" else f"\\x{ord(c):02x}" for c in bad)
        raise InvalidInput(f"staged file {value!r} contains {shown!r}: paths may not contain "
                           "? # \\ or control characters")
    if _BAD_ESCAPE.search(value):
        raise InvalidInput(f"staged file {value!r} has a '%' that starts no %XX escape")


def _check_segment(value: str, segment: str) -> None:
    """No empty segment (`//`), and no `.`/`..` or control character in it, written or
    percent-encoded (once or twice: a reader that decodes must not find one either)."""
    if not segment:
        raise InvalidInput(f"staged file {value!r} has an empty path segment ('//')")
    decoded = segment
    for _ in range(3):
        if any(part in (".", "..") for part in re.split(r"[/\\]", decoded)):
            raise InvalidInput(f"staged file {value!r} has a '.' or '..' path segment")
        if any(unicodedata.category(c) == "Cc" for c in decoded):
            raise InvalidInput(f"staged file {value!r} encodes a control character")
        decoded = unquote(decoded)


# ---- one file -------------------------------------------------------------------------------
def _data_file(io: FileIO, metadata: TableMetadata, schema: Schema, spec: PartitionSpec,
               plan: dict[int, StatisticsCollector], root: Location, item: _Staged) -> DataFile:
    size, footer = _read_footer(io, root, item)
    file_schema = _file_schema(footer, metadata, item.shown)
    _check_schema(file_schema, schema, item.shown)
    mapping = parquet_path_to_id_mapping(file_schema)  # by the file's own names, by id
    try:
        statistics = data_file_statistics_from_parquet_metadata(footer, plan, mapping)
        serialized = statistics.to_serialized_dict()
    except (ValueError, KeyError, TypeError, pa.ArrowException):
        raise InvalidInput(f"staged file {item.shown!r} has column statistics this table's "
                           "types cannot carry") from None
    partition = _partition(io, footer, file_schema, schema, spec, plan, mapping, item)
    data_file = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=item.file_path,
        file_format=FileFormat.PARQUET,
        partition=partition,
        file_size_in_bytes=size,
        sort_order_id=None,
        equality_ids=None,
        key_metadata=None,
        **serialized,
    )
    data_file.spec_id = spec.spec_id  # not a field of the file: `from_args` drops it
    return data_file


def _read_footer(io: FileIO, root: Location, item: _Staged) -> tuple[int, pq.FileMetaData]:
    """The file's size (from the io) and its footer: magic bytes at both ends, the footer
    read alone, at most `MAX_FOOTER_BYTES`."""
    missing = InvalidInput(f"staged file {item.shown!r} does not exist or is not a regular file")
    if item.local_path is not None:
        _check_local(root, item, missing)
    try:
        input_file = io.new_input(item.file_path)
        size = len(input_file)
    except OSError:  # missing, a directory, unreadable: one answer
        raise missing from None
    not_parquet = InvalidInput(f"staged file {item.shown!r} is not a Parquet file")
    if size < 2 * len(_MAGIC) + 4:
        raise not_parquet
    try:
        with input_file.open(seekable=True) as stream:
            head = stream.read(len(_MAGIC))
            stream.seek(size - 8)
            tail = stream.read(8)
            if head != _MAGIC or tail[4:] != _MAGIC:
                raise not_parquet
            length = int.from_bytes(tail[:4], "little")
            if length > MAX_FOOTER_BYTES:
                raise TooLarge(f"staged file {item.shown!r} has a footer over "
                               f"{MAX_FOOTER_BYTES} bytes")
            if length + 12 > size:
                raise not_parquet
            stream.seek(size - 8 - length)
            footer = stream.read(length)
    except InvalidInput:
        raise
    except OSError:
        raise missing from None
    try:
        return size, pq.read_metadata(pa.BufferReader(_MAGIC + footer + tail))
    except (pa.ArrowException, OSError, ValueError):
        raise not_parquet from None


def _check_local(root: Location, item: _Staged, missing: InvalidInput) -> None:
    """A local file must be a regular file whose real path stays under the prefix's: a
    symbolic link may not lead the server to another file on its disk."""
    assert item.local_path is not None
    real_root = os.path.realpath(root.path)
    real = os.path.realpath(item.local_path)
    if not real.startswith(real_root + os.sep):
        raise LocationNotAllowed(f"staged file {item.shown!r} is outside the staging "
                                 "location this merge was given")
    try:
        info = os.stat(real)
    except OSError:
        raise missing from None
    if not stat.S_ISREG(info.st_mode):
        raise missing


# ---- the schema -----------------------------------------------------------------------------
def _file_schema(footer: pq.FileMetaData, metadata: TableMetadata, shown: str) -> Schema:
    try:
        arrow_schema = footer.schema.to_arrow_schema()
    except (pa.ArrowException, ValueError):
        raise InvalidInput(f"staged file {shown!r} has a schema Arrow cannot read") from None
    missing = [f.name for f in _leaves_without_ids(arrow_schema)]
    if missing:
        raise InvalidInput(f"staged file {shown!r} carries no Iceberg field id "
                           f"(PARQUET:field_id) for {', '.join(sorted(missing))}")
    try:
        return pyarrow_to_schema(arrow_schema, format_version=metadata.format_version)
    except (ValueError, TypeError, NotImplementedError):
        raise InvalidInput(f"staged file {shown!r} has a schema this table cannot hold") from None


def _leaves_without_ids(schema: pa.Schema) -> list[pa.Field]:
    out: list[pa.Field] = []
    stack: list[pa.Field] = list(schema)
    while stack:
        field = stack.pop()
        if b"PARQUET:field_id" not in (field.metadata or {}):
            out.append(field)
        kind = field.type
        if pa.types.is_struct(kind):
            stack.extend(kind.field(i) for i in range(kind.num_fields))
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or \
                pa.types.is_fixed_size_list(kind):
            stack.append(kind.value_field)
        elif pa.types.is_map(kind):
            stack.extend([kind.key_field, kind.item_field])
    return out


def _check_schema(file_schema: Schema, table: Schema, shown: str) -> None:
    """Same ids, each with the table's type and place; required fields present and never
    optional in the file; no id the table does not have."""
    ids = _all_ids(file_schema)
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise InvalidInput(f"staged file {shown!r} repeats field ids {duplicated}")
    in_file = index_by_id(file_schema)
    in_table = index_by_id(table)
    file_parents, table_parents = file_schema._lazy_id_to_parent, table._lazy_id_to_parent
    for field_id, field in sorted(in_file.items()):
        expected = in_table.get(field_id)
        if expected is None:
            raise InvalidInput(f"staged file {shown!r} has field id {field_id} ({field.name!r}), "
                               "which the table's current schema does not have")
        if not _same_type(field.field_type, expected.field_type):
            raise InvalidInput(f"staged file {shown!r} has field id {field_id} as "
                               f"{field.field_type}, where the table has {expected.field_type}")
        if file_parents.get(field_id) != table_parents.get(field_id):
            raise InvalidInput(f"staged file {shown!r} has field id {field_id} "
                               f"({field.name!r}) in another place than the table has it")
        if expected.required and not field.required:
            raise InvalidInput(f"staged file {shown!r} has field id {field_id} as optional; "
                               "the table requires it")
    for field_id, expected in sorted(in_table.items()):
        parent = table_parents.get(field_id)
        if expected.required and field_id not in in_file and (parent is None or parent in in_file):
            raise InvalidInput(f"staged file {shown!r} lacks required field id {field_id} "
                               f"({expected.name!r})")


def _all_ids(schema: Schema) -> list[int]:
    """Every field id of `schema`, repeats kept (`index_by_id` would fold them)."""
    out: list[int] = []
    stack: list[Any] = [schema.as_struct()]
    while stack:
        kind = stack.pop()
        if isinstance(kind, StructType):
            for field in kind.fields:
                out.append(field.field_id)
                stack.append(field.field_type)
        elif isinstance(kind, ListType):
            out.append(kind.element_id)
            stack.append(kind.element_type)
        elif isinstance(kind, MapType):
            out += [kind.key_id, kind.value_id]
            stack += [kind.key_type, kind.value_type]
    return out


def _same_type(found: Any, expected: Any) -> bool:
    if isinstance(expected, PrimitiveType):
        return bool(found == expected)
    return type(found) is type(expected)  # nested: their children are compared by id


# ---- the partition ---------------------------------------------------------------------------
def _partition(io: FileIO, footer: pq.FileMetaData, file_schema: Schema, schema: Schema,
               spec: PartitionSpec, plan: dict[int, StatisticsCollector],
               mapping: dict[str, int], item: _Staged) -> Record:
    """The one partition every row of the file lies in, derived from its data."""
    if not spec.fields:
        return Record()
    path_of = {field_id: path for path, field_id in mapping.items()}
    bounds = _source_bounds(footer, spec, schema, plan, mapping)
    values: list[Any] = [None] * len(spec.fields)
    to_read: list[int] = []
    for position, field in enumerate(spec.fields):
        if isinstance(field.transform, VoidTransform) or field.source_id not in path_of:
            continue  # void: always null; a column the file lacks: null in every row
        source_type = schema.find_field(field.source_id).field_type
        derived = _from_bounds(field, schema, source_type, bounds, item) \
            if field.transform.preserves_order else _UNKNOWN
        if derived is _UNKNOWN:
            to_read.append(position)
        else:
            values[position] = derived
    if to_read:
        read = _read_partition(io, item, schema, spec, [spec.fields[p] for p in to_read],
                               path_of, file_schema)
        for position, value in zip(to_read, read, strict=True):
            values[position] = value
    return Record(*values)


_UNKNOWN = object()


@dataclass(frozen=True)
class _Bounds:
    minimum: dict[int, Any]
    maximum: dict[int, Any]
    nulls: dict[int, int]
    values: dict[int, int]


def _source_bounds(footer: pq.FileMetaData, spec: PartitionSpec, schema: Schema,
                   plan: dict[int, StatisticsCollector], mapping: dict[str, int]) -> _Bounds:
    """The footer's untruncated min/max and counts of the partition source columns, by
    pyiceberg's own aggregation (full metrics for them, whatever the table's metrics mode)."""
    full = dict(plan)
    for field in spec.fields:
        collector = plan.get(field.source_id)
        if collector is not None:
            full[field.source_id] = StatisticsCollector(
                field_id=field.source_id, iceberg_type=collector.iceberg_type,
                mode=MetricsMode(MetricModeTypes.FULL), column_name=collector.column_name)
    try:
        stats = data_file_statistics_from_parquet_metadata(footer, full, mapping)
    except (ValueError, KeyError, TypeError, pa.ArrowException):
        return _Bounds({}, {}, {}, {})
    return _Bounds({i: a.current_min for i, a in stats.column_aggregates.items()},
                   {i: a.current_max for i, a in stats.column_aggregates.items()},
                   stats.null_value_counts, stats.value_counts)


def _from_bounds(field: PartitionField, schema: Schema, source_type: Any, bounds: _Bounds,
                 item: _Staged) -> Any:
    """The partition value from the footer's bounds, or `_UNKNOWN` when they cannot say."""
    source = field.source_id
    if isinstance(source_type, (FloatType, DoubleType)):
        return _UNKNOWN  # NaN lies outside the bounds
    nulls, count = bounds.nulls.get(source), bounds.values.get(source)
    if nulls is None or count is None:
        return _UNKNOWN
    if nulls == count:
        return None
    low, high = bounds.minimum.get(source), bounds.maximum.get(source)
    if low is None or high is None:
        return _UNKNOWN
    if nulls:
        raise _spans(item, field)
    transform = field.transform.transform(source_type)
    try:
        first = transform(partition_record_value(field, low, schema))
        last = transform(partition_record_value(field, high, schema))
    except (ValueError, TypeError, OverflowError):
        return _UNKNOWN
    if first != last:
        raise _spans(item, field)
    return first


def _read_partition(io: FileIO, item: _Staged, schema: Schema, spec: PartitionSpec,
                    fields: list[PartitionField], path_of: dict[int, str],
                    file_schema: Schema) -> list[Any]:
    """Read only the source columns of `fields` and require one value per field."""
    paths = {f.source_id: path_of[f.source_id] for f in fields}
    names = {f.source_id: _names(file_schema, f.source_id) for f in fields}
    found: list[dict[Any, Any]] = [{} for _ in fields]
    transforms = [f.transform.transform(schema.find_field(f.source_id).field_type) for f in fields]
    try:
        with io.new_input(item.file_path).open(seekable=True) as stream:
            parquet = pq.ParquetFile(stream)
            for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS,
                                              columns=sorted(set(paths.values()))):
                for i, field in enumerate(fields):
                    column = _leaf(batch, names[field.source_id])
                    for value in pc.unique(column).to_pylist():
                        image = None if value is None else transforms[i](
                            partition_record_value(field, value, schema))
                        found[i][_key(image)] = image
                        if len(found[i]) > 1:
                            raise _spans(item, field)
    except InvalidInput:
        raise
    except (OSError, pa.ArrowException, ValueError, TypeError, OverflowError):
        raise InvalidInput(f"staged file {item.shown!r} could not be read as Parquet") from None
    return [next(iter(values.values())) if values else None for values in found]


def _names(schema: Schema, field_id: int) -> list[str]:
    """The names from the top of `schema` down to `field_id` (its column in a batch)."""
    parents = schema._lazy_id_to_parent
    chain = [field_id]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    return [schema.find_field(i).name for i in reversed(chain)]


def _leaf(batch: pa.RecordBatch, names: list[str]) -> Any:
    column: Any = batch.column(names[0])
    for name in names[1:]:
        column = pc.struct_field(column, name)
    return column


def _key(value: Any) -> Any:
    """One key per partition value: NaN equals itself here."""
    return ("nan",) if isinstance(value, float) and math.isnan(value) else ("v", value)


def _spans(item: _Staged, field: PartitionField) -> InvalidInput:
    return InvalidInput(f"staged file {item.shown!r} holds rows of more than one partition "
                        f"(partition field {field.name!r}): each file must lie in one")


__all__ = ["MAX_FOOTER_BYTES", "staged_data_files"]
