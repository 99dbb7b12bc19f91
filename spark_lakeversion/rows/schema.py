"""Columns matched by field id across schema changes, over Arrow schemas.

A renamed column keeps its field id, so the before side's `name` and the after side's
`full_name` are one column; a dropped column is kept (the before side's rows have it); an
added one is null on the side that lacks it. Field ids travel in Arrow field metadata under
`FIELD_ID` (the key pyiceberg and Parquet use); a field without one is matched by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa

from spark_lakeversion.errors import InvalidInput

#: the Arrow field-metadata key holding a column's field id
FIELD_ID = b"PARQUET:field_id"

#: the output column naming each row's change; a table column of that name is refused
CHANGE_COLUMN = "change"


def field_id(f: pa.Field) -> int | None:
    raw = (f.metadata or {}).get(FIELD_ID)
    return int(raw) if raw is not None else None


def with_field_id(f: pa.Field, fid: int | None) -> pa.Field:
    if fid is None:
        return f
    return f.with_metadata({**(f.metadata or {}), FIELD_ID: str(fid).encode()})


def _identity(f: pa.Field) -> tuple[str, int | str]:
    fid = field_id(f)
    return ("id", fid) if fid is not None else ("name", f.name)


def union_schema(before: pa.Schema, after: pa.Schema) -> pa.Schema:
    """The after side's fields, then the before side's fields it lacks (matched by field
    id, else by name), every one nullable; a before-only field whose name the after side
    reuses for another field is named `<name>__<id>`."""
    seen = {_identity(f) for f in after}
    names = set(after.names)
    fields = [f.with_nullable(True) for f in after]
    for f in before:
        if _identity(f) in seen:
            continue
        name = f.name if f.name not in names else f"{f.name}__{field_id(f)}"
        names.add(name)
        fields.append(f.with_name(name).with_nullable(True))
    schema = pa.schema(fields)
    if CHANGE_COLUMN in schema.names:
        raise InvalidInput(f"the table has a column named {CHANGE_COLUMN!r}, the name the row "
                           "diff gives its change column: rename it to diff rows")
    return schema


def align(batch: pa.RecordBatch, side: pa.Schema, target: pa.Schema,
          extra: Iterable[tuple[str, pa.Array]] = ()) -> pa.RecordBatch:
    """`batch` (columns as named in the side's schema `side`) as `target`'s columns,
    matched by field id (else name): missing ones null, types cast to the target's. `extra`
    columns are appended as they are."""
    by_identity = {_identity(f): f.name for f in side}
    arrays: list[pa.Array] = []
    for f in target:
        source = by_identity.get(_identity(f))
        if source is None or source not in batch.schema.names:
            arrays.append(pa.nulls(batch.num_rows, f.type))
            continue
        column = batch.column(source)
        arrays.append(column if column.type == f.type else column.cast(f.type))
    fields = list(target)
    for name, array in extra:
        fields.append(pa.field(name, array.type))
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def check_columns(schema: pa.Schema, columns: Sequence[str] | None) -> list[str]:
    """The output columns asked for (all when None), each one of the table's."""
    if columns is None:
        return list(schema.names)
    unknown = [c for c in columns if c not in schema.names]
    if unknown or not columns:
        raise InvalidInput(f"unknown column(s) {', '.join(map(repr, unknown)) or '(none)'}: "
                           f"the table has {', '.join(schema.names)}")
    return list(dict.fromkeys(columns))


__all__ = ["CHANGE_COLUMN", "FIELD_ID", "align", "check_columns", "field_id", "union_schema",
           "with_field_id"]
