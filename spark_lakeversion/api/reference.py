"""The read-only ref handle (`Reference`), the ref arguments every handle takes
(`RefLike`: a name, an expression, a handle or a `Commit`) and `HandleCatalog`, what a handle
needs of its catalog (the `Catalog` is one; it sits above the handles, which it builds)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Union

if TYPE_CHECKING:
    import pyarrow as pa

    from spark_lakeversion.formats.delta.handle import DeltaHandle
    from spark_lakeversion.locations import AllowedRoots

from spark_lakeversion.errors import InvalidInput, RefNotFound
from spark_lakeversion.model import (
    Commit,
    Content,
    DiffEntry,
    Key,
    KeyLike,
    MergeBehavior,
    MergeResult,
    RefType,
    ResolvedRef,
)
from spark_lakeversion.versioning import MergeOptions, VersionStore
from spark_lakeversion.versioning.names import expression_of, validate_ref_name
from spark_lakeversion.versioning.suggest import key_not_found

# ---- ref arguments ---------------------------------------------------------------------

RefLike = Union[str, "Reference", Commit]


def ref_expression(value: RefLike) -> str:
    """The ref expression for a name, an expression, a handle or a commit."""
    return expression_of(value)


def branch_name(value: str | Reference) -> str:
    """A branch name from a string or a `Branch` handle (other handles are not writable)."""
    if isinstance(value, Reference):
        if getattr(value, "ref_type", None) is RefType.BRANCH:
            return value.expression
        raise InvalidInput(f"{value.expression!r} is not a branch: writes need a branch")
    return validate_ref_name(value)


class HandleCatalog(Protocol):
    """What a handle needs of its catalog: the store, the author and properties stamped on
    its writes, where its Delta files go, and handles on other expressions."""

    @property
    def store(self) -> VersionStore: ...

    @property
    def author(self) -> str | None: ...

    @property
    def properties(self) -> Mapping[str, str]: ...

    @property
    def warehouse(self) -> str: ...

    def roots(self) -> AllowedRoots: ...

    def ref(self, expression: RefLike) -> Reference: ...


# ---- the read-only handle ----------------------------------------------------------------


class Reference:
    """A read-only handle on a ref expression; resolved afresh on every call."""

    def __init__(self, catalog: HandleCatalog, expression: str) -> None:
        self.catalog = catalog
        self.expression = expression

    @property
    def store(self) -> VersionStore:
        return self.catalog.store

    def resolve(self) -> ResolvedRef:
        return self.store.resolve(self.expression)

    @property
    def head(self) -> Commit:
        """The commit this ref points at now (an immutable value: later moves don't show)."""
        return self.store.get_commit(self.resolve().commit_id)

    def exists(self) -> bool:
        try:
            self.resolve()
        except RefNotFound:
            return False
        return True

    def ancestor(self, n: int) -> Reference:
        """The `n`-th first-parent ancestor (``ref~n``)."""
        return self.catalog.ref(f"{self.expression}~{int(n)}")

    def as_of(self, when: datetime | str) -> Reference:
        """This ref's state at a point in time (``ref#<ISO-8601>``)."""
        stamp = when.isoformat() if isinstance(when, datetime) else when
        return self.catalog.ref(f"{self.expression}#{stamp}")

    def log(self, *, table: KeyLike | None = None, limit: int | None = None,
            page_size: int = 100) -> Iterator[Commit]:
        """Commits reachable from here, newest first; fetched page by page as you iterate."""
        if limit is not None and limit < 0:
            raise InvalidInput("limit must be >= 0")
        key = Key.of(table) if table is not None else None
        remaining = limit
        token: str | None = None
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            page = self.store.log(self.expression, key=key, limit=size, page_token=token)
            yield from page.commits
            if remaining is not None:
                remaining -= len(page.commits)
            token = page.next_page_token
            if not token or not page.commits:
                return

    def diff(self, other: RefLike) -> list[DiffEntry]:
        """What changed going from this ref to `other` (ADDED = only in `other`)."""
        return self.store.diff(self.expression, ref_expression(other))

    def diff_rows(self, other: RefLike, table: KeyLike, columns: Sequence[str] | None = None,
                  limit: int | None = None, summary: bool = False, *,
                  engine: str = "duckdb", spark: Any = None) -> pa.Table:
        """The rows of `table` that differ going from this ref to `other`, as an Arrow table:
        `change` (insert, delete, update_before, update_after) first, then the table's
        columns (or `columns`), at most `limit` rows; `summary`: counts inserted, deleted and
        updated per partition. Only the files live on one side are read; over HTTP the
        server pages it (`/api/v1/diff/rows`) and this gathers the pages.

        `engine="spark"` (past the server's memory budget) reads and diffs the rows in the
        SparkSession `spark` instead, by the same SQL (`spark/rows.py`): the same rows in the
        same order; the server only plans (`/api/v1/diff/rows/plan`)."""
        import pyarrow as pa

        from spark_lakeversion.spark.rows import check_engine

        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 0):
            raise InvalidInput(f"limit must be an integer >= 0, not {limit!r}")
        if isinstance(columns, str):
            raise InvalidInput("columns must be a list of column names, not one string")
        target = ref_expression(other)
        if check_engine(engine, spark) == "spark":
            from spark_lakeversion.spark.rows import run_plan

            plan = self.store.plan_row_diff(self.expression, target, table, columns=columns,
                                            limit=limit, summary=summary, dialect="spark")
            return run_plan(spark, plan)
        pages: list[pa.Table] = []
        token: str | None = None
        remaining = limit
        while True:
            page = self.store.diff_rows(self.expression, target, table, columns=columns,
                                        limit=remaining, page_token=token, summary=summary)
            pages.append(page.rows)
            if remaining is not None:
                remaining -= page.rows.num_rows
            token = page.next_page_token
            if not token or remaining == 0 or page.rows.num_rows == 0:
                break
        return pa.concat_tables(pages) if len(pages) > 1 else pages[0]

    def entries(self, prefix: KeyLike | None = None) -> dict[Key, Content]:
        """Every namespace and table under `prefix`, in key order."""
        return dict(self.store.list_keys(self.expression, prefix))

    def tables(self, prefix: KeyLike | None = None) -> dict[Key, Content]:
        return {k: c for k, c in self.store.list_keys(self.expression, prefix) if c.is_table}

    def delta(self, key: KeyLike) -> DeltaHandle:
        """A handle on the Delta table `key` at this ref (writes need a branch)."""
        from spark_lakeversion.formats.delta.handle import DeltaHandle

        catalog = self.catalog
        return DeltaHandle(self.store, self.expression, key, author=catalog.author,
                           warehouse=lambda: catalog.warehouse, roots=catalog.roots)

    def table(self, key: KeyLike) -> Content:
        """The state of one table (or namespace); `KeyNotFound` if it is absent here."""
        k = Key.of(key)
        content = self.store.get_content(self.expression, k)
        if content is None:
            raise key_not_found(self.store, self.expression, k,
                                f"{k} does not exist at {self.expression}")
        return content

    def merge_into(
        self,
        target: str | Reference,
        *,
        dry_run: bool = False,
        behaviors: Mapping[KeyLike, MergeBehavior | str] | None = None,
        strategy: MergeBehavior | str = MergeBehavior.NORMAL,
        fast_forward: bool = True,
        message: str | None = None,
        expected_target_head: str | None = None,
        isolation_level: str | None = None,
        properties: Mapping[str, str] | None = None,
        row_conflicts: str | None = None,
        engine: str = "duckdb",
        spark: Any = None,
    ) -> MergeResult:
        """Three-way merge of this ref into branch `target`.

        `strategy` is the default for every table (normal, source-wins, target-wins);
        `behaviors` overrides it per table. `isolation_level` ("serializable" or
        "snapshot") overrides the tables' own for content-aware merges. `row_conflicts`
        ("source-wins" or "target-wins") settles rows both sides changed differently (else
        a ROW_CONFLICT). `engine="spark"` runs the row-level merges in `spark` (the
        caller's session, through its lakeversion catalog on the same server) instead of
        the server's DuckDB. Conflicts raise `ConflictError` carrying the `MergeResult`; a
        dry run writes nothing.
        """
        from spark_lakeversion.spark.rows import check_engine, merge_on_spark

        options = MergeOptions.of(
            strategy=strategy, behaviors=behaviors or {}, isolation_level=isolation_level,
            row_conflicts=row_conflicts,
            fast_forward=fast_forward, dry_run=dry_run, message=message,
            author=self.catalog.author, expected_head=expected_target_head,
            properties={**self.catalog.properties, **(properties or {})})
        if check_engine(engine, spark) == "spark":
            return merge_on_spark(spark, self.expression, branch_name(target), options)
        return self.store.merge(self.expression, branch_name(target), options)

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and isinstance(other, Reference)
                and other.catalog is self.catalog and other.expression == self.expression)

    def __hash__(self) -> int:
        return hash((type(self), id(self.catalog), self.expression))

    def __str__(self) -> str:
        return self.expression

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r})"
