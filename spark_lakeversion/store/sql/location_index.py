"""The store's location -> table-id index: two tables must never share a directory.

Any table content whose fields carry a `location` (Iceberg: the table location; Delta: its
root) is indexed when a commit writes it, on any ref; rows are never removed (a dropped
table's files live on in history until gc). The store does not interpret formats: it
indexes the generic `location` field, in its canonical form (`spark_lakeversion.locations`).

`owner(conn, location, content_id)` answers "which other table id owns a location equal to,
containing or inside this one" with O(depth) point lookups for the ancestors and one range
scan for the descendants, each O(log n) on the primary key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from spark_lakeversion.errors import ConflictError, InvalidInput
from spark_lakeversion.locations import OVERLAPS, Location, parse_location
from spark_lakeversion.model import Content

#: lv_meta key set once every content row written before the index existed is indexed
BACKFILLED = "location_index_backfilled"


def make_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "lv_table_locations", metadata,
        # byte order on PostgreSQL too: the descendant range scan relies on '/' < '0'
        sa.Column("location", sa.String(2048).with_variant(
            sa.String(2048, collation="C"), "postgresql"), primary_key=True),
        sa.Column("content_id", sa.String(128), primary_key=True),
    )


def canonical(value: object) -> Location | None:
    """The parsed `location` of a content value, None when absent or unparseable (old
    stores may hold any string: those rows are simply not indexed)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_location(value)
    except InvalidInput:
        return None


def rows(contents: Iterable[Content | None]) -> list[dict[str, Any]]:
    out = {}
    for content in contents:
        if content is None or not content.is_table:
            continue
        location = canonical(content.fields.get("location"))
        if location is not None:
            out[(location.uri, content.id)] = {"location": location.uri,
                                               "content_id": content.id}
    return list(out.values())


def _ancestors(location: Location) -> list[str]:
    """`location` and every parent directory, as canonical URIs."""
    found = [location.uri]
    path = location.path
    while path not in ("", "/"):
        path = path.rsplit("/", 1)[0] or "/"
        found.append(Location(location.scheme, location.authority, path).uri)
    return found


def owner(conn: Connection, table: sa.Table, location: Location,
          content_id: str | None) -> tuple[str, str] | None:
    """(other table id, its location) overlapping `location`, or None."""
    others = table.c.content_id != content_id if content_id is not None else sa.true()
    row = conn.execute(sa.select(table.c.content_id, table.c.location).where(
        table.c.location.in_(_ancestors(location)), others).limit(1)).first()
    if row is None:
        prefix = location.uri.rstrip("/") + "/"
        # everything strictly below: '/' + 1 == '0', so [prefix, prefix[:-1] + '0')
        row = conn.execute(sa.select(table.c.content_id, table.c.location).where(
            table.c.location >= prefix, table.c.location < prefix[:-1] + "0",
            others).limit(1)).first()
    return (str(row[0]), str(row[1])) if row is not None else None


def claim(conn: Connection, table: sa.Table, new_rows: list[dict[str, Any]],
          postgres: bool) -> None:
    """Inside the commit's transaction, refuse index rows whose location another table id
    owns, so two concurrent creates at one location cannot both land (the catalog checks
    first; this closes the window between its check and the commit). Only rows not yet
    indexed are checked, so an existing table's commits cost one lookup. PostgreSQL takes
    a transaction-scoped advisory lock for new locations, which are rare (creates and
    location changes); SQLite already serialises writers."""
    if not new_rows:
        return
    keys = [(r["location"], r["content_id"]) for r in new_rows]
    present = {(str(r[0]), str(r[1])) for r in conn.execute(
        sa.select(table.c.location, table.c.content_id).where(
            sa.tuple_(table.c.location, table.c.content_id).in_(keys)))}
    fresh = [r for r in new_rows if (r["location"], r["content_id"]) not in present]
    if not fresh:
        return
    if postgres:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    for row in fresh:
        found = owner(conn, table, parse_location(row["location"]), row["content_id"])
        if found is not None:
            raise ConflictError(
                f"table location {row['location']} {OVERLAPS}: a concurrent create took "
                "it; tables never share files")


#: the advisory-lock key that serialises new index rows on PostgreSQL ("lvloc")
_LOCK_KEY = 0x6C766C6F63


def backfill_rows(data: Iterable[str]) -> list[dict[str, Any]]:
    """Index rows for stored content JSON (the store's `lv_contents.data` column)."""
    contents = []
    for text in data:
        try:
            contents.append(Content.from_dict(json.loads(text)))
        except (ValueError, KeyError, TypeError):
            continue
    return rows(contents)
