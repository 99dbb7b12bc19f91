"""The row-level merge of one table planned for an engine that reads and writes the rows
itself (Spark, in the caller's session), and what that engine hands back.

Past the server's row budget (`Limits.max_row_merge_bytes`), or when the caller asks, the
server does not read the region: it plans. `plan_merge` names, per state (ancestor, target,
source), the table at that state's commit and the region's files live there (the files
either side changed, from `RowChanges`: metadata only, shared files never named), the inline
table of each file's label, ordinal and kept flags, and `MergeSQL`'s statements in the
engine's dialect: word for word the rule DuckDB runs in the server. The engine stages the
scans, runs the statements, writes the rows out with the table format's own writer under
the staging location the plan gives, and sends back an `EngineRows`: conflicts (at most
`CONFLICTS_LISTED` and their count), serializable's refused inserts, the target's files to
replace and the paths of the files it wrote. The format checks those files itself
(`formats/iceberg/staged.py`) and commits one merge snapshot through the usual merge, so
protection, grants, gates and gc's fence apply as to any merge.

Trust: what the engine sends is a client's word. The server checks everything it can from
metadata and the files (the commits it was planned on, the files to replace lie in the
region and are live on the target, each written file lies under the issued staging location,
its schema by field id, its statistics and partition read from the file); the rows
themselves are the merger's, as the rows of any branch it merges are, and the target's
gates judge the state published.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import ROW_CONFLICT_KEYS_LISTED, Conflict, ConflictType, Key
from spark_lakeversion.rows.dialect import Dialect, string_literal
from spark_lakeversion.rows.merge3 import RowConflict
from spark_lakeversion.rows.merge_sql import FILE, ORD, PART, MergeSQL, side
from spark_lakeversion.rows.plan import side_columns
from spark_lakeversion.rows.source import FileRef, RowChanges

#: the plan format's version
MERGE_PLAN_VERSION = 1
#: what a staging directory's last segment looks like: the prefix and 32 hex digits
STAGING_SEGMENT = re.compile(r"^lv-rowmerge-[0-9a-f]{32}$")
#: at most this many files are written by one table's row merge
MAX_WRITTEN_FILES = 100_000
_TKEPT, _SKEPT = "__lv_tk", "__lv_sk"
#: the extra columns' SQL types (both dialects spell them alike)
_TYPES = {FILE: "STRING", PART: "STRING", ORD: "BIGINT", _TKEPT: "BOOLEAN", _SKEPT: "BOOLEAN"}


def new_staging_segment() -> str:
    """A fresh staging directory name, unguessable: `lv-rowmerge-<32 hex>`."""
    return f"lv-rowmerge-{secrets.token_hex(16)}"


def _values(dialect: Dialect, rows: Sequence[tuple[str, str, int, bool, bool]]) -> str:
    """The files' inline table: path, partition label, ordinal, kept by target/source."""
    text = ", ".join(f"({string_literal(dialect, p)}, {string_literal(dialect, part)}, "
                     f"CAST({o} AS BIGINT), {str(tk).upper()}, {str(sk).upper()})"
                     for p, part, o, tk, sk in rows)
    q = dialect.quote
    return (f"(SELECT * FROM VALUES {text} AS lv_f({q(FILE)}, {q(PART)}, {q(ORD)}, "
            f"{q(_TKEPT)}, {q(_SKEPT)}))")


def plan_merge(target: RowChanges, source: RowChanges, key: Key,
               commits: Mapping[str, str], dialect: Dialect, *, resolution: str | None,
               serializable: bool, write: Mapping[str, Any]) -> dict[str, Any]:
    """The plan (JSON-safe) of one table's row merge over the target's and source's
    `RowChanges` against the ancestor, for `dialect`'s engine. `commits` names the
    ancestor's, target's and source's commits (`base`, `target`, `source`); `write` is the
    format's instructions for the written files (where, which spec), passed through."""
    from spark_lakeversion.rows.merge_rows import CannotMergeRows

    if target.schema.remove_metadata() != source.schema.remove_metadata():
        raise CannotMergeRows("the table's schema differs between the states")
    if target.identifier != source.identifier:
        raise CannotMergeRows("the identifier fields differ between the sides")
    schema = target.schema
    columns = list(schema.names)
    prefix = f"lv_{secrets.token_hex(6)}_"
    q = dialect.quote
    tb = {r.path: r for r in target.before.files}
    sb = {r.path: r for r in source.before.files}
    region = sorted(set(tb) | set(sb))
    scans: list[dict[str, Any]] = []
    statements: list[str] = []
    views: list[str] = []

    def scan(label: str, commit: str, refs: Sequence[FileRef]) -> str:
        view = f"{prefix}{label}_scan"
        scans.append({"view": view, "commit": commit, "name": key.elements[-1],
                      "namespace": [f"{key.elements[0]}@{commit}", *key.elements[1:-1]],
                      "files": [r.path for r in refs]})
        return view

    def relation(label: str, view: str, arrow: Any,
                 files: Sequence[tuple[str, str, int, bool, bool]], kept: bool) -> str:
        name = f"{prefix}{label}"
        extra = [FILE, PART, ORD, *((_TKEPT, _SKEPT) if kept else ())]
        projection = side_columns(dialect, arrow, schema)
        if files:
            cols = ", ".join(f"f.{q(c)} AS {q(c)}" for c in extra)
            body = (f"SELECT {projection}, {cols} FROM {q(view)} AS v "
                    f"JOIN {_values(dialect, files)} AS f ON v.{q(FILE)} = f.{q(FILE)}")
        else:  # no rows, the same columns and types
            cols = ", ".join(f"CAST(NULL AS {_TYPES[c]}) AS {q(c)}" for c in extra)
            body = f"SELECT {projection}, {cols} FROM {q(view)} AS v WHERE 1 = 0"
        statements.append(f"CREATE OR REPLACE TEMPORARY VIEW {q(name)} AS {body}")
        views.append(name)
        return name

    base_files = [(p, (tb.get(p) or sb[p]).partition, i, p not in tb, p not in sb)
                  for i, p in enumerate(region)]
    base = relation("base", scan("base", commits["base"], [tb.get(p) or sb[p] for p in region]),
                    target.before.arrow, base_files, True)
    news = []
    for label, changes, commit in (("tnew", target, commits["target"]),
                                   ("snew", source, commits["source"])):
        refs = list(changes.after.files)
        new_files = [(r.path, r.partition, len(region) + i, False, False)
                     for i, r in enumerate(refs)]
        news.append(relation(label, scan(label, commit, refs), changes.after.arrow,
                             new_files, False))
    tname, sname = f"{prefix}target", f"{prefix}source"
    for name, kept, new in ((tname, _TKEPT, news[0]), (sname, _SKEPT, news[1])):
        statements.append(f"CREATE OR REPLACE TEMPORARY VIEW {q(name)} AS "
                          f"{side(dialect, columns, base, kept, new)}")
        views.append(name)
    sql = MergeSQL(dialect, tuple(columns), tuple(target.identifier), q(base), q(tname),
                   q(sname), resolution)
    steps = sql.steps(f"{prefix}step")
    for name, text in steps[:-1]:
        statements.append(f"CREATE OR REPLACE TEMPORARY VIEW {q(name)} AS {text}")
        views.append(name)
    merged, files = steps[-1][0], f"{prefix}files"
    cached = [merged, files]
    statements.append(f"CACHE TABLE {q(merged)} AS {steps[-1][1]}")
    statements.append(f"CACHE TABLE {q(files)} AS {sql.rewritten_files(q(merged))}")
    duplicates = {what: sql.duplicate_keys(rel) for what, rel in
                  (("ancestor", q(base)), ("target", q(tname)), ("source", q(sname)))} \
        if sql.keyed else {}
    inserted = None
    if serializable:
        part = q(PART)
        ins = sql.inserted(q(merged))
        inserted = {"count": f"SELECT count(*) AS n FROM ({ins}) AS i",
                    "partitions": f"SELECT DISTINCT {part} FROM ({ins}) AS i "
                                  f"ORDER BY 1 LIMIT 20"}
    return {"version": MERGE_PLAN_VERSION, "table": str(key), "dialect": dialect.name,
            "commits": dict(commits), "columns": columns,
            "identifier": list(target.identifier), "resolution": resolution,
            "scans": scans, "statements": statements, "views": views, "cached": cached,
            "duplicate_keys": duplicates,
            "conflict_count": sql.conflict_count(q(merged)),
            "conflicts": sql.conflicts(q(merged), ROW_CONFLICT_KEYS_LISTED),
            "inserted": inserted,
            "files": f"SELECT {q(FILE)} FROM {q(files)} ORDER BY 1",
            "rows": sql.rows_out(q(merged), q(files)),
            "write": dict(write),
            "statistics": {"files_read": len(region) + len(target.after.files)
                           + len(source.after.files)}}


# ---- what the engine hands back --------------------------------------------------------

def _int(data: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"row_results: {name} must be a whole number >= 0")
    return value


def _strings(data: Mapping[str, Any], name: str, most: int) -> tuple[str, ...]:
    value = data.get(name) or []
    if not isinstance(value, list) or len(value) > most \
            or any(not isinstance(v, str) or not v for v in value):
        raise InvalidInput(f"row_results: {name} must be a list of at most {most} "
                           "non-empty strings")
    if len(set(value)) != len(value):
        raise InvalidInput(f"row_results: {name} names a file twice")
    return tuple(value)


@dataclass(frozen=True)
class EngineRows:
    """What an engine that ran a `plan_merge` plan hands back for one table (parsed once,
    at the boundary; every value untrusted until the format checks it against the table).

    `commits` the plan's (base, target, source); `duplicate_keys` per state, keyed tables
    (any: the identifier does not name one row, the file-level conflict stands);
    `conflict_count` and the first `conflicts` (rows of the plan's conflicts query);
    `inserted` and `inserted_partitions` (serializable); `removed` the target's files
    replaced; `written` the files written, under `staging`."""

    commits: Mapping[str, str]
    conflict_count: int = 0
    conflicts: tuple[Mapping[str, Any], ...] = ()
    duplicate_keys: Mapping[str, int] = field(default_factory=dict)
    inserted: int = 0
    inserted_partitions: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    written: tuple[str, ...] = ()
    staging: str = ""

    @classmethod
    def parse(cls, data: object) -> EngineRows:
        if not isinstance(data, Mapping):
            raise InvalidInput("row_results: each table's results must be an object")
        commits = data.get("commits")
        if not isinstance(commits, Mapping) or set(commits) != {"base", "target", "source"} \
                or any(not isinstance(v, str) or not v for v in commits.values()):
            raise InvalidInput("row_results: commits must name the plan's base, target and "
                               "source commits")
        conflicts = data.get("conflicts") or []
        if not isinstance(conflicts, list) or len(conflicts) > ROW_CONFLICT_KEYS_LISTED \
                or any(not isinstance(c, Mapping) for c in conflicts):
            raise InvalidInput(f"row_results: conflicts must be at most "
                               f"{ROW_CONFLICT_KEYS_LISTED} objects")
        dup = data.get("duplicate_keys") or {}
        if not isinstance(dup, Mapping) or not set(dup) <= {"ancestor", "target", "source"}:
            raise InvalidInput("row_results: duplicate_keys counts keys per state "
                               "(ancestor, target, source)")
        staging = data.get("staging") or ""
        if not isinstance(staging, str):
            raise InvalidInput("row_results: staging must be the plan's staging location")
        out = cls(dict(commits), _int(data, "conflict_count"), tuple(dict(c) for c in conflicts),
                  {k: _int(dup, k) for k in dup}, _int(data, "inserted"),
                  _strings(data, "inserted_partitions", 20),
                  _strings(data, "removed", MAX_WRITTEN_FILES),
                  _strings(data, "written", MAX_WRITTEN_FILES), staging)
        if out.written and not out.staging:
            raise InvalidInput("row_results: written files need the plan's staging location")
        if len(out.conflicts) > out.conflict_count:
            raise InvalidInput("row_results: more conflicts listed than counted")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"commits": dict(self.commits), "conflict_count": self.conflict_count,
                "conflicts": [dict(c) for c in self.conflicts],
                "duplicate_keys": dict(self.duplicate_keys), "inserted": self.inserted,
                "inserted_partitions": list(self.inserted_partitions),
                "removed": list(self.removed), "written": list(self.written),
                "staging": self.staging}


def parse_row_results(data: object) -> dict[Key, EngineRows]:
    """An `/api/v1/merge` body's `row_results`: table name -> `EngineRows`."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidInput("row_results must map table names such as db.orders to results")
    out: dict[Key, EngineRows] = {}
    for name, value in data.items():
        if isinstance(name, Key):
            out[name] = value if isinstance(value, EngineRows) else EngineRows.parse(value)
            continue
        if not isinstance(name, str) or not name:
            raise InvalidInput("row_results must map table names such as db.orders to "
                               "results")
        out[Key.of(name)] = value if isinstance(value, EngineRows) else EngineRows.parse(value)
    return out


def conflicts_of(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                 identifier: Sequence[str]) -> list[RowConflict]:
    """The rows of `MergeSQL.conflicts` as `RowConflict`s (an engine's JSON rows may leave
    out null cells: a missing cell is null)."""
    n = len(columns)
    width = len(identifier) or n
    out: list[RowConflict] = []
    for row in rows:
        identity = tuple(row.get(f"__lv_k{j}") for j in range(width))
        if not identifier:
            b, t, s = (int(row.get(f"__lv_n{a}") or 0) for a in "bts")
            out.append(RowConflict(identity, str(row.get("__lv_reason")),
                                   identity if b else None, identity if t else None,
                                   identity if s else None, counts=(b, t, s)))
            continue

        def state(a: str, row: Mapping[str, Any] = row) -> tuple[Any, ...] | None:
            return tuple(row.get(f"__lv_{a}{i}") for i in range(n)) \
                if row.get(f"__lv_{a}p") else None

        clashes = tuple(i for i in range(n) if row.get(f"__lv_x{i}")) \
            if row.get("__lv_case") == "X" else ()
        out.append(RowConflict(identity, str(row.get("__lv_reason")), state("b"), state("t"),
                               state("s"), clashes))
    return out


@dataclass
class EngineCheck:
    """What every format's take-back of an engine's `EngineRows` decides alike
    (`check_engine_rows`): the row merge's statistics so far, the ROW_CONFLICT (if the
    engine counted unsettled conflicts), and the target's files of the region, the only
    ones the engine may replace (`check_replaced`)."""

    statistics: dict[str, Any]
    conflicts: list[Conflict]
    replaceable: set[str]


def check_engine_rows(key: Key, rows: EngineRows, commits: Mapping[str, str],
                      target: RowChanges, source: RowChanges,
                      resolution: str | None) -> EngineCheck:
    """The format-neutral checks of an engine's results for one table against the
    merge's own `commits` and `RowChanges` (metadata only): results of another planning,
    or a key twice on a state, are `CannotMergeRows` (the file-level conflict stands)."""
    from spark_lakeversion.rows.conflicts import row_conflict
    from spark_lakeversion.rows.merge_rows import CannotMergeRows

    if dict(rows.commits) != dict(commits):
        raise CannotMergeRows("the row results were computed for other commits than this "
                              "merge's (the target or source moved): plan the row merge again")
    for what, count in rows.duplicate_keys.items():
        if count:
            raise CannotMergeRows(f"the identifier fields do not name one row on the {what}")
    columns, identifier = list(target.schema.names), list(target.identifier)
    tb = {r.path for r in target.before.files}
    sb = {r.path for r in source.before.files}
    statistics: dict[str, Any] = {
        "engine": "spark",
        "files_read": len(tb | sb) + len(target.after.files) + len(source.after.files),
        "conflicts": rows.conflict_count if resolution is None else 0,
        "resolved": rows.conflict_count if resolution is not None else 0,
        "files_rewritten": len(rows.removed), "files_written": len(rows.written),
        "rows_rewritten": 0, "bytes_written": 0}
    conflicts = [row_conflict(key, conflicts_of(rows.conflicts, columns, identifier),
                              columns, identifier, rows.conflict_count)] \
        if rows.conflict_count and resolution is None else []
    return EngineCheck(statistics, conflicts,
                       (sb - tb) | {r.path for r in target.after.files})


def inserts_conflict(key: Key, rows: EngineRows, code: ConflictType, reason: str
                     ) -> Conflict | None:
    """Serializable's conflict with the target's inserts the engine found in partitions
    the source deleted from (`rows.inserted`), typed and worded by the format; None
    when it found none."""
    if not rows.inserted:
        return None
    return Conflict(code, key, reason, {"rows": rows.inserted,
                                        "partitions": sorted(rows.inserted_partitions)})


def written_statistics(files: Sequence[Any]) -> dict[str, int]:
    """The rows and bytes an engine wrote, as its files (read back from their footers)
    say: never the engine's own numbers."""
    return {"rows_rewritten": sum(f.record_count for f in files),
            "bytes_written": sum(f.file_size_in_bytes for f in files)}


def check_replaced(rows: EngineRows, replaceable: set[str]) -> None:
    """The files the engine replaces must be the target's files of the region."""
    stray = sorted(set(rows.removed) - replaceable)
    if stray:
        raise InvalidInput(f"row_results: {len(stray)} file(s) to replace are not the "
                           f"target's files of this merge's region, e.g. {stray[0]!r}")


def staging_under(data_location: str, staging: str) -> str:
    """`staging` checked to be an issued staging directory right under `data_location`
    (its last segment `STAGING_SEGMENT`); the directory, with a trailing slash."""
    root = data_location.rstrip("/")
    if not staging.startswith(root + "/"):
        raise InvalidInput("row_results: the staging location is not the one the plan issued "
                           "for this table")
    segment = staging[len(root) + 1:].rstrip("/")
    if not STAGING_SEGMENT.match(segment):
        raise InvalidInput("row_results: the staging location is not the one the plan issued "
                           "for this table")
    return f"{root}/{segment}/"


__all__ = ["MAX_WRITTEN_FILES", "MERGE_PLAN_VERSION", "STAGING_SEGMENT", "EngineCheck",
           "EngineRows", "check_engine_rows", "check_replaced", "conflicts_of",
           "inserts_conflict", "new_staging_segment", "parse_row_results", "plan_merge",
           "staging_under", "written_statistics"]
