"""A row-level merge's outcome as data: the ROW_CONFLICT a format reports, and the statistics
every merge result carries (`model.merges.ROW_MERGE`).

Values are made JSON-safe here once (dates as ISO strings, bytes as hex, decimals as text),
so the conflict travels through `/api/v1`, the CLI's JSON and Spark's result rows alike.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from spark_lakeversion.model import ROW_CONFLICT_KEYS_LISTED, Conflict, ConflictType, Key
from spark_lakeversion.rows.merge3 import RowConflict


def json_value(value: Any) -> Any:
    """A cell as JSON: the value itself when JSON has it, else its usual text form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b16encode(bytes(value)).decode("ascii").lower()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def _named(columns: Sequence[str], row: Sequence[Any] | None) -> dict[str, Any] | None:
    return None if row is None else {c: json_value(v) for c, v in zip(columns, row, strict=True)}


def row_conflict(key: Key, conflicts: Sequence[RowConflict], columns: Sequence[str],
                 identifier: Sequence[str], count: int | None = None) -> Conflict:
    """One ROW_CONFLICT for a table: its first `ROW_CONFLICT_KEYS_LISTED` keys (ordered by
    key) with base, target and source values, and how many there are in all (`count`, when
    `conflicts` lists only the first of them)."""
    count = len(conflicts) if count is None else count
    listed = sorted(conflicts, key=lambda c: repr(c.identity))[:ROW_CONFLICT_KEYS_LISTED]
    entries: list[dict[str, Any]] = []
    for c in listed:
        if c.counts is not None:  # keyless: the row is the key; its counts differ
            row = c.base or c.target or c.source
            entry: dict[str, Any] = {"key": _named(columns, row), "reason": c.reason,
                                     "base": c.counts[0], "target": c.counts[1],
                                     "source": c.counts[2]}
        else:
            key_values = c.identity if isinstance(c.identity, tuple) else (c.identity,)
            entry = {"key": _named(identifier, key_values), "reason": c.reason,
                     "base": _named(columns, c.base), "target": _named(columns, c.target),
                     "source": _named(columns, c.source)}
            if c.columns:
                entry["columns"] = [columns[i] for i in c.columns]
        entries.append(entry)
    keyed = bool(identifier)
    first = entries[0]["key"] if entries else None
    what = "key" if keyed else "row"
    return Conflict(
        ConflictType.ROW_CONFLICT, key,
        f"{count} {what}(s) of {key} changed differently on both sides, e.g. "
        f"{first}; settle them with row_conflicts='source-wins' or 'target-wins'",
        {"count": count, "keys": entries,
         "identifier_fields": list(identifier), "values": "rows" if keyed else "counts"})
