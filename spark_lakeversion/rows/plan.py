"""The row diff planned for an engine that reads the rows itself (Spark, past the server's
memory budget): the server decides what is read and writes the SQL; the engine stages the
scans and runs it (the shim's `RowEngine`), never receiving a row from the server.

A plan names, per side, the table at that side's commit (``db@<commit>``, which reaches
Iceberg and Delta tables alike through the Iceberg REST catalog) and the data files live
only on that side (`RowChanges`: shared files are skipped from metadata alone), grouped by
partition label. Each group is read as the table at that commit filtered to those files, so
that side's deletes apply. The side's columns are matched to the union schema by field id
(a renamed column is one column, a missing one null), then `rows.diff.DiffSql`'s statements
run, word for word those DuckDB runs in the server, in the engine's dialect.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from spark_lakeversion.model import Key
from spark_lakeversion.rows.dialect import Dialect, string_literal, temp_relation
from spark_lakeversion.rows.diff import SUMMARY_SCHEMA, DiffSql, check_page, output_schema
from spark_lakeversion.rows.schema import check_columns, field_id
from spark_lakeversion.rows.source import PARTITION_COLUMN, FileRef, RowChanges, RowSide

#: the plan format's version (the shim refuses none; a field added keeps it)
PLAN_VERSION = 1


def side_columns(dialect: Dialect, side: pa.Schema | None, target: pa.Schema) -> str:
    """The union schema's columns read from one side's own: by field id, else by name."""
    by_id = {field_id(f): f.name for f in side or [] if field_id(f) is not None}
    names = set(side.names) if side is not None else set()
    out = []
    for f in target:
        fid = field_id(f)
        name = by_id.get(fid) if fid is not None else (f.name if f.name in names else None)
        source = dialect.quote(name) if name is not None else "NULL"
        out.append(f"{source} AS {dialect.quote(f.name)}")
    return ", ".join(out)


def _groups(files: Sequence[FileRef]) -> dict[str, list[str]]:
    """File paths per partition label, labels in order."""
    groups: dict[str, list[str]] = {}
    for ref in sorted(files, key=lambda r: (r.partition, r.path)):
        groups.setdefault(ref.partition, []).append(ref.path)
    return groups


def schema_text(schema: pa.Schema) -> str:
    """An Arrow schema as text (base64 of its IPC form), so the caller types the answer."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_of(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def plan_diff(changes: RowChanges, key: Key, commits: tuple[str, str], dialect: Dialect, *,
              columns: Sequence[str] | None = None, limit: int | None = None,
              offset: int = 0, summary: bool = False) -> dict[str, Any]:
    """The plan (JSON-safe) of the row diff `changes` of `key` from `commits[0]` to
    `commits[1]`: `scans`, `statements` (each creating one relation), `query` (the page or
    summary), `views` (every relation it names, to drop), `schema` (the answer's Arrow
    schema, `schema_text`) and `statistics`."""
    check_page(limit, offset)
    names = check_columns(changes.schema, columns)
    prefix = f"lv_{secrets.token_hex(6)}_"
    sql = DiffSql(dialect, changes.schema.names, changes.identifier, prefix)
    scans: list[dict[str, Any]] = []
    statements: list[str] = []
    views: list[str] = []
    for label, side, commit in (("before", changes.before, commits[0]),
                                ("after", changes.after, commits[1])):
        parts = []
        projection = side_columns(dialect, _arrow(side), changes.schema)
        for i, (partition, paths) in enumerate(_groups(side.files).items()):
            view = f"{prefix}{label}_g{i}"
            scans.append({"side": label, "commit": commit, "view": view,
                          "namespace": [f"{key.elements[0]}@{commit}", *key.elements[1:-1]],
                          "name": key.elements[-1], "files": paths})
            parts.append(f"SELECT {projection}, {string_literal(dialect, partition)} AS "
                         f"{dialect.quote(PARTITION_COLUMN)} FROM {dialect.quote(view)}")
        if not parts:  # nothing to read on this side: no rows, the same columns
            parts.append(f"SELECT {side_columns(dialect, None, changes.schema)}, "
                         f"'' AS {dialect.quote(PARTITION_COLUMN)} WHERE 1 = 0")
        name = f"{prefix}{label}_src"
        statements.append(temp_relation(dialect, name, " UNION ALL ".join(parts)))
        views.append(name)
    for name, query in sql.statements():
        statements.append(temp_relation(dialect, name, query))
        views.append(name)
    answer = SUMMARY_SCHEMA if summary else output_schema(changes.schema, names)
    return {"version": PLAN_VERSION, "table": str(key), "from_commit": commits[0],
            "to_commit": commits[1], "dialect": dialect.name,
            "identifier": list(changes.identifier), "scans": scans,
            "statements": statements, "views": views,
            "query": sql.summary() if summary else sql.rows(names, limit, offset),
            "schema": schema_text(answer), "statistics": changes.statistics()}


def _arrow(side: RowSide) -> pa.Schema | None:
    """A side's own Arrow schema (field ids in metadata), None when it has no rows."""
    return side.arrow


__all__ = ["PLAN_VERSION", "plan_diff", "schema_of", "schema_text", "side_columns"]
