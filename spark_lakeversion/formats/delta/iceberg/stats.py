"""A Delta `add` as an Iceberg data file: record count, and lower/upper bounds and null
counts from the add's Delta stats, mapped to field ids. No Parquet footer is read.

Bounds are kept only where Delta's are exact enough for Iceberg to skip files on them:
strings only when shorter than Delta's truncation length (a truncated maximum is not an
upper bound), timestamps widened to the millisecond Delta rounds them down to; decimals,
binaries and nested values carry none."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pyiceberg.conversions import to_bytes
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BooleanType,
    DateType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
)

from spark_lakeversion.formats.delta.iceberg import values
from spark_lakeversion.formats.delta.iceberg.errors import untranslatable
from spark_lakeversion.formats.delta.iceberg.schema import Translated, partition_value

#: Delta truncates string statistics to this many characters by default
STRING_PREFIX = 32


def _flatten(value: Any, path: tuple[str, ...], out: dict[tuple[str, ...], Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, (*path, str(k)), out)
    else:
        out[path] = value


def _bound(value: Any, itype: IcebergType, upper: bool) -> bytes | None:
    """A Delta stat as an Iceberg bound, or None when it cannot be one exactly."""
    if value is None:
        return None
    if isinstance(itype, (IntegerType, LongType)) and isinstance(value, int) \
            and not isinstance(value, bool):
        return to_bytes(itype, value)
    if isinstance(itype, (FloatType, DoubleType)) and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        return to_bytes(itype, float(value))
    if isinstance(itype, BooleanType) and isinstance(value, bool):
        return to_bytes(itype, value)
    if isinstance(itype, StringType) and isinstance(value, str) \
            and len(value) < STRING_PREFIX:
        return to_bytes(itype, value)
    if isinstance(itype, DateType) and isinstance(value, str):
        return to_bytes(itype, values.days(value))
    if isinstance(itype, (TimestampType, TimestamptzType)) and isinstance(value, str):
        moment = values.micros(value)
        return to_bytes(itype, moment + 999 if upper else moment)
    return None


def data_file(add: Mapping[str, Any], file_location: str, translated: Translated,
              partition_columns: list[str], spec_fields: int) -> DataFile:
    """The Iceberg data file of one Delta `add` (partition values in spec order)."""
    if add.get("deletionVector"):
        raise untranslatable(f"file {add.get('path')} has a deletion vector "
                             "(table feature deletionVectors)")
    physical = translated.by_physical
    values = add.get("partitionValues") or {}
    partition = []
    for name in partition_columns[:spec_fields]:
        source = translated.columns[(name,)]
        text = values.get(source.physical, values.get(name))
        partition.append(partition_value(text, source.type, name))
    stats: dict[str, Any] = {}
    raw = add.get("stats")
    if isinstance(raw, str) and raw:
        try:
            stats = json.loads(raw)
        except ValueError:
            stats = {}
    records = stats.get("numRecords")
    if not isinstance(records, int):
        raise untranslatable(f"file {add.get('path')} has no record count in its Delta "
                             "stats (Iceberg needs one per file)")
    lower: dict[int, bytes] = {}
    upper: dict[int, bytes] = {}
    nulls: dict[int, int] = {}
    values_count: dict[int, int] = {}
    for key, target in (("minValues", lower), ("maxValues", upper)):
        flat: dict[tuple[str, ...], Any] = {}
        _flatten(stats.get(key) or {}, (), flat)
        for path, value in flat.items():
            column = physical.get(path)
            if column is None:
                continue
            try:
                encoded = _bound(value, column.type, key == "maxValues")
            except (ValueError, TypeError, OverflowError):
                encoded = None
            if encoded is not None:
                target[column.field_id] = encoded
    flat_nulls: dict[tuple[str, ...], Any] = {}
    _flatten(stats.get("nullCount") or {}, (), flat_nulls)
    for path, value in flat_nulls.items():
        column = physical.get(path)
        if column is not None and isinstance(value, int) and len(path) == 1:
            nulls[column.field_id] = value
            values_count[column.field_id] = records
    # a bound on one side only is still a bound; drop pairs that disagree
    return DataFile.from_args(
        content=DataFileContent.DATA, file_path=file_location,
        file_format=FileFormat.PARQUET, partition=Record(*partition),
        record_count=records, file_size_in_bytes=int(add.get("size") or 0),
        value_counts=values_count or None, null_value_counts=nulls or None,
        lower_bounds=lower or None, upper_bounds=upper or None)
