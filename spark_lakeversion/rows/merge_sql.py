"""The three-way row rule (`rows.merge3`) as SQL, so the row-level merge runs out of core in
whatever engine runs the text: DuckDB in the server (`rows.merge_rows`), Spark in the
caller's session. Only the `Dialect` says what the engines spell differently; this module
never runs anything and knows no engine.

The caller provides three relations with the table's columns (by name) and three more:
`FILE` (the data file a row lives in), `PART` (its partition label, '' unpartitioned) and
`ORD` (the file's position in the side's reading order, for keyless serializable checks):

- base: the ancestor's rows of the region (the files either side changed);
- target, source: each side's rows of the region (`side` builds them from the base's rows
  of the region files the side left alone plus the side's own changed files).

`MergeSQL.merged()` is one row per identity (the identifier's values; keyless, the whole row)
some side changed (identities alike on all three sides, the carry-over rows of a rewrite, are
left out: no answer needs them), holding the three sides' states, the merged state and
whether it differs from the target's;
the caller materializes it (a temporary table, a cached view) under a name it passes to the
other queries: the conflicts (`conflicts`, at most `limit`, and `conflict_count`), the
target's files to rewrite (`rewritten_files`), the rows replacing them (`rows_out`) and, under
serializable isolation, the rows the target inserted where the source removed rows
(`inserted`).

Merged columns: `__lv_k{j}` the identity; keyed, per column i `__lv_b{i}`, `__lv_t{i}`,
`__lv_s{i}` (each side's value), `__lv_f{i}` (the merged value), `__lv_x{i}` (the cell
clashes), presence `__lv_bp`/`__lv_tp`/`__lv_sp`/`__lv_fp`; keyless, counts `__lv_nb`,
`__lv_nt`, `__lv_ns`, `__lv_nf`. Both: `__lv_reason` (`merge3`'s conflict reason or NULL)
and `__lv_changed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from spark_lakeversion.rows.dialect import Dialect, ascending, same, string_literal
from spark_lakeversion.rows.merge3 import (
    COUNT_COUNT,
    DELETE_UPDATE,
    INSERT_INSERT,
    SOURCE_WINS,
    TARGET_WINS,
    UPDATE_UPDATE,
)

#: the extra columns of the input relations
FILE, PART, ORD = "__lv_file", "__lv_part", "__lv_ord"
#: what `merged()` calls the merged state's columns
REASON, CHANGED = "__lv_reason", "__lv_changed"


def _and(terms: Sequence[str]) -> str:
    return "(" + " AND ".join(terms) + ")" if terms else "TRUE"


def _or(terms: Sequence[str]) -> str:
    return "(" + " OR ".join(terms) + ")" if terms else "FALSE"


def side(dialect: Dialect, columns: Sequence[str], base: str, kept: str, changed: str) -> str:
    """One side's rows of the region: the base's rows where the boolean column `kept` says
    the side left the file alone, and the rows of its own changed files (`changed`)."""
    cols = ", ".join(dialect.quote(c) for c in [*columns, FILE, PART, ORD])
    return (f"SELECT {cols} FROM {base} WHERE {dialect.quote(kept)} "
            f"UNION ALL SELECT {cols} FROM {changed}")


@dataclass(frozen=True)
class MergeSQL:
    """The statements of one table's row merge.

    `columns` are the table's, in order; `identifier` its identifier columns (empty:
    keyless, rows a counted multiset); `base`, `target`, `source` the input relations'
    names (already quoted or plain identifiers); `resolution` the ``row_conflicts`` choice
    (`merge3.parse_resolution`), or None to report conflicts."""

    dialect: Dialect
    columns: tuple[str, ...]
    identifier: tuple[str, ...]
    base: str
    target: str
    source: str
    resolution: str | None = None

    # ---- helpers --------------------------------------------------------------------------
    def q(self, name: str) -> str:
        return self.dialect.quote(name)

    def _text(self, value: str) -> str:
        return string_literal(self.dialect, value)

    @property
    def keyed(self) -> bool:
        return bool(self.identifier)

    @property
    def identity(self) -> tuple[str, ...]:
        """The columns naming a row: the identifier's, else all of them."""
        return self.identifier or self.columns

    def _match(self, alias: str, merged_alias: str) -> str:
        """A row of relation `alias` is identity `merged_alias` (null-safe)."""
        return _and([same(self.dialect, f"{alias}.{self.q(c)}", f"{merged_alias}.__lv_k{j}")
                     for j, c in enumerate(self.identity)])

    def _same(self, x: str, y: str, alias: str = "j") -> str:
        """Side x's row equals side y's (both absent, or both present with equal cells)."""
        cells = [same(self.dialect, f"{alias}.__lv_{x}{i}", f"{alias}.__lv_{y}{i}")
                 for i in range(len(self.columns))]
        return _or([_and([f"{alias}.__lv_{x}p", f"{alias}.__lv_{y}p", *cells]),
                    _and([f"NOT {alias}.__lv_{x}p", f"NOT {alias}.__lv_{y}p"])])

    # ---- checks ---------------------------------------------------------------------------
    def duplicate_keys(self, relation: str) -> str:
        """How many keys occur more than once in `relation` (keyed tables only: the rule
        needs one row per key and side)."""
        keys = ", ".join(self.q(c) for c in self.identifier)
        return (f"SELECT count(*) AS n FROM (SELECT {keys} FROM {relation} "
                f"GROUP BY {keys} HAVING count(*) > 1) AS lv_dup")

    # ---- the rule -------------------------------------------------------------------------
    def merged(self) -> str:
        """One row per identity some side changed: the three states, the merged one, the
        conflict reason. One statement (the steps of `steps()` nested)."""
        if not self.keyed:
            return self._keyless()
        (_, first), _ = self._joins("lv_first")
        _, (_, second) = self._joins(f"({first})")
        return self._keyed(f"({second})")

    def steps(self, prefix: str = "lv_step") -> list[tuple[str, str]]:
        """`merged()` as steps, each one join, to materialize in order under the names
        given (an engine whose multi-join pipelines cannot spill runs each alone); the
        last step is the merged relation."""
        if not self.keyed:
            return [(f"{prefix}_merged", self._keyless())]
        joins = self._joins(f"{prefix}_bt")
        return [*joins, (f"{prefix}_merged", self._keyed(joins[-1][0]))]

    def _joins(self, first: str) -> list[tuple[str, str]]:
        """The three sides' rows of one key side by side: base FULL JOIN target (named
        `first`), then that FULL JOIN source. Presence: the side's marker column."""
        q, d = self.q, self.dialect
        keys = list(self.identifier)
        k_bt = ", ".join(f"coalesce(b.{q(c)}, t.{q(c)}) AS __lv_k{j}" for j, c in enumerate(keys))
        cols_bt = ", ".join(f"{a}.{q(c)} AS __lv_{a}{i}" for a in "bt"
                            for i, c in enumerate(self.columns))
        on_bt = _and([same(d, f"b.{q(c)}", f"t.{q(c)}") for c in keys])
        bt = (f"SELECT {k_bt}, b.__lv_one IS NOT NULL AS __lv_bp, "
              f"t.__lv_one IS NOT NULL AS __lv_tp, {cols_bt} "
              f"FROM (SELECT *, 1 AS __lv_one FROM {self.base}) AS b FULL OUTER JOIN "
              f"(SELECT *, 1 AS __lv_one FROM {self.target}) AS t ON {on_bt}")
        k_s = ", ".join(f"coalesce(j.__lv_k{j}, s.{q(c)}) AS __lv_k{j}"
                        for j, c in enumerate(keys))
        cols_s = ", ".join([f"j.__lv_{a}{i} AS __lv_{a}{i}" for a in "bt"
                            for i in range(len(self.columns))]
                           + [f"s.{q(c)} AS __lv_s{i}" for i, c in enumerate(self.columns)])
        on_s = _and([same(d, f"j.__lv_k{j}", f"s.{q(c)}") for j, c in enumerate(keys)])
        bts = (f"SELECT {k_s}, coalesce(j.__lv_bp, FALSE) AS __lv_bp, "
               f"coalesce(j.__lv_tp, FALSE) AS __lv_tp, s.__lv_one IS NOT NULL AS __lv_sp, "
               f"{cols_s} FROM {first} AS j FULL OUTER JOIN "
               f"(SELECT *, 1 AS __lv_one FROM {self.source}) AS s ON {on_s}")
        return [(first, bt), (f"{first}s", bts)]

    def _keyed(self, joined: str) -> str:
        n = len(self.columns)
        j = joined

        def cell(x: str, y: str, i: int) -> str:
            return same(self.dialect, f"j.__lv_{x}{i}", f"j.__lv_{y}{i}")

        # the rule's case: T take the target's, S the source's, M cells merged cleanly,
        # X cells clash, D a delete against a change (`merge3.merge_keyed`)
        clash = [f"(NOT {cell('t', 's', i)} AND NOT (j.__lv_bp AND "
                 f"({cell('s', 'b', i)} OR {cell('t', 'b', i)})))" for i in range(n)]
        merged_cell = [f"CASE WHEN {cell('t', 's', i)} OR (j.__lv_bp AND {cell('s', 'b', i)})"
                       f" THEN j.__lv_t{i} WHEN j.__lv_bp AND {cell('t', 'b', i)} "
                       f"THEN j.__lv_s{i} ELSE j.__lv_t{i} END" for i in range(n)]
        case = (f"CASE WHEN {self._same('s', 'b')} OR {self._same('s', 't')} THEN 'T' "
                f"WHEN {self._same('t', 'b')} THEN 'S' "
                f"WHEN j.__lv_tp AND j.__lv_sp THEN "
                f"CASE WHEN {_or(clash)} THEN 'X' ELSE 'M' END ELSE 'D' END")
        rule = (f"SELECT j.*, {case} AS __lv_case, {self._same('s', 't')} AS __lv_st, "
                + ", ".join(f"{c} AS __lv_x{i}" for i, c in enumerate(clash)) + ", "
                + ", ".join(f"{c} AS __lv_m{i}" for i, c in enumerate(merged_cell))
                + f" FROM {j} AS j WHERE NOT ({self._same('s', 'b')} AND "
                f"{self._same('t', 'b')})")
        # what each case takes, the resolution applied: T, S, M, or MS (merged cells, the
        # clashing ones from the source)
        on_clash = {SOURCE_WINS: "'MS'", TARGET_WINS: "'M'"}.get(self.resolution or "", "'T'")
        on_delete = "'S'" if self.resolution == SOURCE_WINS else "'T'"
        take = (f"CASE rr.__lv_case WHEN 'X' THEN {on_clash} WHEN 'D' THEN {on_delete} "
                "ELSE rr.__lv_case END")
        reason = (f"CASE r.__lv_case WHEN 'X' THEN CASE WHEN r.__lv_bp THEN "
                  f"{self._text(UPDATE_UPDATE)} ELSE {self._text(INSERT_INSERT)} END "
                  f"WHEN 'D' THEN {self._text(DELETE_UPDATE)} END")
        final = [f"CASE r.__lv_take WHEN 'S' THEN r.__lv_s{i} WHEN 'M' THEN r.__lv_m{i} "
                 f"WHEN 'MS' THEN CASE WHEN r.__lv_x{i} THEN r.__lv_s{i} ELSE r.__lv_m{i} END "
                 f"ELSE r.__lv_t{i} END" for i in range(n)]
        decided = (f"SELECT r.*, {reason} AS {REASON}, "
                   "CASE r.__lv_take WHEN 'S' THEN r.__lv_sp WHEN 'T' THEN r.__lv_tp "
                   "ELSE TRUE END AS __lv_fp, "
                   + ", ".join(f"{c} AS __lv_f{i}" for i, c in enumerate(final))
                   + f" FROM (SELECT rr.*, {take} AS __lv_take "
                   f"FROM ({rule}) AS rr) AS r")
        unchanged = _or([_and(["d.__lv_fp", "d.__lv_tp", *(
            same(self.dialect, f"d.__lv_f{i}", f"d.__lv_t{i}") for i in range(n))]),
            _and(["NOT d.__lv_fp", "NOT d.__lv_tp"])])
        return f"SELECT d.*, NOT {unchanged} AS {CHANGED} FROM ({decided}) AS d"

    def _keyless(self) -> str:
        q = self.q
        cols = ", ".join(q(c) for c in self.columns)
        named = ", ".join(f"{q(c)} AS __lv_k{i}" for i, c in enumerate(self.columns))
        counts = ", ".join(f"CAST(sum(CASE WHEN __lv_side = {i} THEN 1 ELSE 0 END) AS BIGINT) "
                           f"AS __lv_n{a}"
                           for i, a in enumerate("bts"))
        grouped = (f"SELECT {named}, {counts} FROM ("
                   f"SELECT {cols}, 0 AS __lv_side FROM {self.base} UNION ALL "
                   f"SELECT {cols}, 1 AS __lv_side FROM {self.target} UNION ALL "
                   f"SELECT {cols}, 2 AS __lv_side FROM {self.source}) AS u GROUP BY {cols} "
                   "HAVING NOT (sum(CASE WHEN __lv_side = 0 THEN 1 ELSE 0 END) = "
                   "sum(CASE WHEN __lv_side = 1 THEN 1 ELSE 0 END) AND "
                   "sum(CASE WHEN __lv_side = 1 THEN 1 ELSE 0 END) = "
                   "sum(CASE WHEN __lv_side = 2 THEN 1 ELSE 0 END))")
        case = ("CASE WHEN g.__lv_ns = g.__lv_nb OR g.__lv_ns = g.__lv_nt THEN 'T' "
                "WHEN g.__lv_nt = g.__lv_nb THEN 'S' ELSE 'X' END")
        takes_source = "('S', 'X')" if self.resolution == SOURCE_WINS else "('S')"
        decided = (f"SELECT c.*, CASE WHEN c.__lv_case = 'X' THEN {self._text(COUNT_COUNT)} END "
                   f"AS {REASON}, CASE WHEN c.__lv_case IN {takes_source} "
                   f"THEN c.__lv_ns ELSE c.__lv_nt END AS __lv_nf "
                   f"FROM (SELECT g.*, {case} AS __lv_case FROM ({grouped}) AS g) AS c")
        return f"SELECT d.*, d.__lv_nf <> d.__lv_nt AS {CHANGED} FROM ({decided}) AS d"

    # ---- answers over the materialized merged relation -------------------------------------
    def conflict_count(self, merged: str) -> str:
        """Identities changed differently on both sides (resolved or not)."""
        return f"SELECT count(*) AS n FROM {merged} WHERE {REASON} IS NOT NULL"

    def conflicts(self, merged: str, limit: int) -> str:
        """The first `limit` conflicting identities, in identity order, with their states."""
        order = ascending([f"__lv_k{j}" for j in range(len(self.identity))])
        return (f"SELECT * FROM {merged} WHERE {REASON} IS NOT NULL "
                f"ORDER BY {order} LIMIT {int(limit)}")

    def _changed_identities(self, merged: str) -> str:
        ks = ", ".join(f"__lv_k{j}" for j in range(len(self.identity)))
        return f"SELECT {ks}, 1 AS __lv_hit FROM {merged} WHERE {CHANGED}"

    def rewritten_files(self, merged: str) -> str:
        """The target's files holding a row whose merged state differs from the target's:
        each is rewritten once."""
        return (f"SELECT DISTINCT t.{self.q(FILE)} AS {self.q(FILE)} FROM {self.target} AS t "
                f"JOIN ({self._changed_identities(merged)}) AS m ON {self._match('t', 'm')}")

    def rows_out(self, merged: str, files: str) -> str:
        """The rows replacing the rewritten `files` (a relation of `FILE`): their rows the
        merge leaves alone, then every changed identity's merged rows."""
        q = self.q
        kept_cols = ", ".join(f"t.{q(c)} AS {q(c)}" for c in self.columns)
        kept = (f"SELECT {kept_cols} FROM {self.target} AS t "
                f"LEFT JOIN ({self._changed_identities(merged)}) AS m "
                f"ON {self._match('t', 'm')} WHERE m.__lv_hit IS NULL "
                f"AND t.{q(FILE)} IN (SELECT {q(FILE)} FROM {files})")
        if self.keyed:
            new_cols = ", ".join(f"__lv_f{i} AS {q(c)}" for i, c in enumerate(self.columns))
            new = f"SELECT {new_cols} FROM {merged} WHERE {CHANGED} AND __lv_fp"
        else:
            new_cols = ", ".join(f"x.__lv_k{i} AS {q(c)}" for i, c in enumerate(self.columns))
            new = (f"SELECT {new_cols} FROM (SELECT m.*, {self.dialect.repeat('m.__lv_nf')} "
                   f"AS __lv_i FROM {merged} AS m WHERE m.{CHANGED} AND m.__lv_nf > 0) AS x")
        return f"{kept} UNION ALL {new}"

    def inserted(self, merged: str) -> str:
        """Serializable at row grain: the target's new rows (keyed: a key the ancestor
        lacked, unless the source inserted the same row; keyless: copies beyond the
        ancestor's and the source's count, and per partition only those beyond the rows the
        target removed there) in a partition where the source removed a row, or in no
        partition when the source removed any. Columns: the table's and `PART`."""
        q = self.q
        cols = ", ".join(f"t.{q(c)} AS {q(c)}" for c in self.columns)
        removed_where = "NOT m.__lv_sp" if self.keyed else "m.__lv_ns < m.__lv_nb"
        removed_in = (f"SELECT DISTINCT b.{q(PART)} FROM {self.base} AS b JOIN {merged} AS m "
                      f"ON {self._match('b', 'm')} WHERE {removed_where}")
        near = (f"(t.{q(PART)} IN ({removed_in}) OR (t.{q(PART)} = '' AND "
                f"(SELECT count(*) FROM ({removed_in}) AS ri) > 0))")
        if self.keyed:
            return (f"SELECT {cols}, t.{q(PART)} AS {q(PART)} FROM {self.target} AS t "
                    f"JOIN {merged} AS m ON {self._match('t', 'm')} "
                    f"WHERE NOT m.__lv_bp AND NOT m.__lv_st AND {near}")
        every = ", ".join(f"t.{q(c)}" for c in self.columns)
        plain = ", ".join(q(c) for c in self.columns)
        numbered = (f"SELECT t.*, row_number() OVER (PARTITION BY {every} "
                    f"ORDER BY t.{q(ORD)}) AS __lv_rn FROM {self.target} AS t")
        new = (f"SELECT t.* FROM ({numbered}) AS t JOIN {merged} AS m "
               f"ON {self._match('t', 'm')} "
               f"WHERE t.__lv_rn > greatest(m.__lv_nb, m.__lv_ns) AND {near}")

        def per_partition(relation: str) -> str:
            return (f"SELECT {q(PART)}, {plain}, count(*) AS __lv_c FROM {relation} "
                    f"GROUP BY {q(PART)}, {plain}")

        row_match = _and([same(self.dialect, f"bc.{q(c)}", f"tc.{q(c)}")
                          for c in self.columns])
        removed = (f"SELECT bc.{q(PART)} AS {q(PART)}, "
                   f"CAST(sum(greatest(bc.__lv_c - coalesce(tc.__lv_c, 0), 0)) AS BIGINT) "
                   f"AS __lv_removed "
                   f"FROM ({per_partition(self.base)}) AS bc "
                   f"LEFT JOIN ({per_partition(self.target)}) AS tc "
                   f"ON bc.{q(PART)} = tc.{q(PART)} AND {row_match} GROUP BY bc.{q(PART)}")
        ranked = (f"SELECT n.*, row_number() OVER (PARTITION BY n.{q(PART)} "
                  f"ORDER BY n.{q(ORD)}, n.__lv_rn) AS __lv_pn FROM ({new}) AS n")
        out_cols = ", ".join(f"x.{q(c)} AS {q(c)}" for c in self.columns)
        return (f"SELECT {out_cols}, x.{q(PART)} AS {q(PART)} FROM ({ranked}) AS x "
                f"LEFT JOIN ({removed}) AS r ON x.{q(PART)} = r.{q(PART)} "
                f"WHERE x.__lv_pn > coalesce(r.__lv_removed, 0)")


__all__ = ["CHANGED", "FILE", "ORD", "PART", "REASON", "MergeSQL", "side"]
