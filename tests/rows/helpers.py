"""Helpers of the row-diff tests: a keyed Iceberg table written through pyiceberg, and the
plain reference diff computed from two full scans."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from tests.lake import ServerLake

KEYED_ICEBERG = Schema(NestedField(1, "id", LongType(), required=True),
                       NestedField(2, "v", StringType(), required=False),
                       identifier_field_ids=[1])
KEYED_ARROW = pa.schema([pa.field("id", pa.int64(), nullable=False),
                         pa.field("v", pa.string())])


def create_keyed(lake: ServerLake, table: str, rows: dict[int, str], files: int = 1) -> None:
    """`table` with identifier field `id`, its rows appended in `files` data files."""
    catalog = lake.catalog("main")
    if ("db",) not in catalog.list_namespaces():
        catalog.create_namespace("db")
    t = catalog.create_table(table, schema=KEYED_ICEBERG)
    ids = sorted(rows)
    step = max(1, -(-len(ids) // files))
    for start in range(0, len(ids), step):
        chunk = ids[start:start + step]
        t.append(pa.table({"id": chunk, "v": [rows[i] for i in chunk]}, schema=KEYED_ARROW))


def scan(lake: ServerLake, ref: str, table: str) -> list[dict[str, Any]]:
    return lake.catalog(ref).load_table(table).scan().to_arrow().to_pylist()


def reference_diff(before: list[dict[str, Any]], after: list[dict[str, Any]],
                   key: str | None) -> Counter[tuple[Any, ...]]:
    """The diff by plain counting over two full scans: (change, *row values) -> count."""
    b = Counter(tuple(sorted(r.items())) for r in before)
    a = Counter(tuple(sorted(r.items())) for r in after)
    deleted, inserted = b - a, a - b
    out: Counter[tuple[Any, ...]] = Counter()
    if key is None:
        for row, n in deleted.items():
            out[("delete", *row)] += n
        for row, n in inserted.items():
            out[("insert", *row)] += n
        return out
    by_key_del: dict[Any, list[tuple[Any, ...]]] = {}
    for row, n in deleted.items():
        by_key_del.setdefault(dict(row)[key], []).extend([row] * n)
    by_key_ins: dict[Any, list[tuple[Any, ...]]] = {}
    for row, n in inserted.items():
        by_key_ins.setdefault(dict(row)[key], []).extend([row] * n)
    for k in set(by_key_del) | set(by_key_ins):
        dels, inss = sorted(by_key_del.get(k, [])), sorted(by_key_ins.get(k, []))
        pairs = min(len(dels), len(inss))
        for row in dels[:pairs]:
            out[("update_before", *row)] += 1
        for row in inss[:pairs]:
            out[("update_after", *row)] += 1
        for row in dels[pairs:]:
            out[("delete", *row)] += 1
        for row in inss[pairs:]:
            out[("insert", *row)] += 1
    return out


def as_counter(table: pa.Table) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    for row in table.to_pylist():
        change = row.pop("change")
        out[(change, *sorted(row.items()))] += 1
    return out
