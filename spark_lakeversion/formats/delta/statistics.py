"""An add action's `stats` as Delta's JSON: what a log we write says of a file, so readers
of that log (DuckDB, Spark, deltalake) skip files by it. From statistics deltalake parsed
out of another log (`stats_text`, `add_stats`), or from the rows of a file we write
(`table_stats`). A bound is written back exactly or left out (`_stat_value`), never rounded:
a bound written inexactly could make a reader skip a file it needs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def _stat_value(value: Any) -> Any:
    """A min or max as Delta's stats JSON holds it, or None where it cannot be written back
    exactly (a bound written inexactly could make a reader skip a file it needs): numbers
    (finite; a decimal only when its JSON number reads back as itself), booleans, strings,
    dates, timestamps (milliseconds, as Delta writers truncate them, spelled as delta-rs
    spells them: ISO with `Z` when zoned, `YYYY-MM-DD HH:MM:SS.fff` when not), and structs
    of those. Binary has no bounds in Delta's stats."""
    if isinstance(value, dict):
        nested = {k: v for k, v in ((k, _stat_value(v)) for k, v in value.items())
                  if v is not None}
        return nested or None
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, Decimal):
        number = float(value)
        return number if Decimal(repr(number)) == value else None
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        zoned = value.tzinfo is not None
        moment = value.astimezone(dt.timezone.utc) if zoned else value
        text = moment.strftime("%Y-%m-%dT%H:%M:%S." if zoned else "%Y-%m-%d %H:%M:%S.") \
            + f"{moment.microsecond // 1000:03d}"
        return text + "Z" if zoned else text
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def _stat_counts(value: Any) -> Any:
    if isinstance(value, dict):
        nested = {k: v for k, v in ((k, _stat_counts(v)) for k, v in value.items())
                  if v is not None}
        return nested or None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stats_text(num_records: int | None, null_count: Mapping[str, Any] | None,
               minimum: Mapping[str, Any] | None, maximum: Mapping[str, Any] | None
               ) -> str | None:
    """An add's `stats` JSON from statistics as deltalake reads them (`get_add_actions`):
    what a log we write says of a file another log added, so that readers of ours (DuckDB,
    Spark, deltalake) skip files as they would on the other. A bound that cannot be
    written back exactly is left out (`_stat_value`): a reader then reads the file."""
    if num_records is None:
        return None
    stats: dict[str, Any] = {"numRecords": int(num_records)}
    for name, values, encode in (("minValues", minimum, _stat_value),
                                 ("maxValues", maximum, _stat_value),
                                 ("nullCount", null_count, _stat_counts)):
        found = encode(dict(values)) if values else None
        if found:
            stats[name] = found
    return json.dumps(stats, separators=(",", ":"))


def add_stats(row: Mapping[str, Any]) -> str | None:
    """`stats_text` of one row of deltalake's `get_add_actions(flatten=False)`."""
    return stats_text(row.get("num_records"), row.get("null_count"), row.get("min"),
                      row.get("max"))


def table_stats(table: Any) -> str | None:
    """`stats_text` of a file we write from the Arrow `table` it holds: its rows, each
    top-level column's nulls, and bounds where `_stat_value` writes them exactly (none for
    a float column holding NaN, as delta-rs leaves NaN out, nor for nested or binary
    columns)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_nested(kind):
            continue
        nulls[name] = column.null_count
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) \
                or column.null_count == len(column):
            continue
        if pa.types.is_floating(kind) and pc.any(pc.is_nan(column)).as_py():
            continue
        try:
            bounds = pc.min_max(column)
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue
        minimum[name], maximum[name] = bounds["min"].as_py(), bounds["max"].as_py()
    return stats_text(table.num_rows, nulls, minimum, maximum)


__all__ = ["add_stats", "stats_text", "table_stats"]
