"""Helpers of the row-diff tests: a keyed Iceberg table written through pyiceberg, and the
plain reference diff computed from two full scans."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st
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


def no_null_v_in_new_rows(ctx: Any) -> tuple[bool, str]:
    """A Python check (`--check-module tests.rows.helpers`): the rows the merge inserts or
    updates into db.k have a v."""
    rows = ctx.changes("db.k").to_pylist()
    bad = [r["id"] for r in rows if r["change"] in ("insert", "update_after") and r["v"] is None]
    return not bad, f"{len(rows)} changed row(s); null v in ids {bad}"


# ---- the three-way row merge's plain reference (tests/rows/test_merge3.py, the table-level
# properties of tests/formats/iceberg/test_row_merge_property.py) ---------------------------
DELETED = "<deleted>"


def side_edit(base: tuple | None, side: tuple | None) -> Any:
    """What one side did to a key, as the reference sees it: None (nothing), DELETED, or
    {column: new value} (an insert is every column)."""
    if side == base:
        return None
    if side is None:
        return DELETED
    return {i: v for i, v in enumerate(side) if base is None or base[i] != v}


def reference_keyed(base: dict, target: dict, source: dict, resolution: str | None
                    ) -> tuple[dict, set]:
    """The issue's rule, case by case: returns (merged rows, conflicting keys)."""
    merged: dict = {}
    conflicts: set = set()
    for key in set(base) | set(target) | set(source):
        b = base.get(key)
        te, se = side_edit(b, target.get(key)), side_edit(b, source.get(key))
        if se is None:
            result = target.get(key)
        elif te is None:
            result = source.get(key)
        elif te == se:
            result = target.get(key)
        elif DELETED in (te, se):
            conflicts.add(key)
            result = {"source-wins": source.get(key)}.get(resolution or "", target.get(key))
        else:
            clash = {c for c in set(te) & set(se) if te[c] != se[c]}
            row = list(b) if b is not None else list(target[key])
            for c, v in te.items():
                row[c] = v
            for c, v in se.items():
                if c not in clash:
                    row[c] = v
            if clash:
                conflicts.add(key)
                if resolution == "source-wins":
                    for c in clash:
                        row[c] = se[c]
                elif resolution is None:
                    row = list(target[key])
            result = tuple(row)
        if result is not None:
            merged[key] = result
    return merged, conflicts


def reference_keyless(base: list, target: list, source: list, resolution: str | None
                      ) -> tuple[list, set]:
    """Multisets as sorted lists: per distinct row, the count rule."""
    out: list = []
    conflicts: set = set()
    for row in set(base) | set(target) | set(source):
        b, t, s = base.count(row), target.count(row), source.count(row)
        if t - b == 0:
            n = s
        elif s - b == 0 or s == t:
            n = t
        else:
            conflicts.add(row)
            n = s if resolution == "source-wins" else t
        out += [row] * n
    return sorted(out, key=repr), conflicts


@st.composite
def keyless_sides(draw: st.DrawFn, row: st.SearchStrategy[tuple]) -> tuple[list, list, list]:
    """An ancestor's rows and two sides that each removed and appended a few: the keyless
    merge's input, for the plain rule and the engine alike."""
    base = draw(st.lists(row, max_size=8))

    def edit() -> list:
        side = list(base)
        for _ in range(draw(st.integers(0, 4))):
            if side and draw(st.booleans()):
                side.pop(draw(st.integers(0, len(side) - 1)))
            else:
                side.append(draw(row))
        return side

    return base, edit(), edit()


def update(lake: ServerLake, ref: str, table: str, key: int, value: str) -> None:
    """One copy-on-write update of row `key` on `ref`."""
    t = lake.catalog(ref).load_table(table)
    t.overwrite(pa.table({"id": [key], "v": [value]}, schema=KEYED_ARROW),
                overwrite_filter=f"id = {key}")


@contextmanager
def team_reader_server(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    """A real server with two principals: `root` (admin everywhere) and `viewer` (read on
    team-* only). `db.k` holds row 1 "secret" on main; team-1 changed it to "changed"."""
    from spark_lakeversion.auth import load_auth_config
    from spark_lakeversion.server.embedded import start_embedded_server
    from spark_lakeversion.versioning.http import RestVersionStore
    from tests.server.access_helpers import write_auth_config

    tokens = write_auth_config(tmp_path / "auth.toml", {
        "root": '[{ refs = "*", allow = ["admin"] }]',
        "viewer": '[{ refs = "team-*", allow = ["read"] }]'})
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "auth.toml")) as server:
        lake = ServerLake(server, tmp_path / "wh", tokens["root"])
        create_keyed(lake, "db.k", {1: "secret"})
        RestVersionStore(server.url, tokens["root"]).create_ref("team-1")
        update(lake, "team-1", "db.k", 1, "changed")
        yield server, tokens
