"""lakeFS-style Python handles over a version store: `connect()`, `Branch`, `Tag`, `Reference`.

Handles are lazy: creating one checks only its name and touches no store, so
``catalog.branch("dev").create(from_="main")`` reads like what it does. Every method that
takes a ref accepts a name/expression string or a handle (or a `Commit`), so code can
pass around whichever it has.

A `Catalog` wraps any `VersionStore`; `connect(url)` only picks one, with the one factory
`spark_lakeversion.wiring.open_store` (databases and ``http(s)://`` servers alike).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, Union

if TYPE_CHECKING:
    import pyarrow as pa

    from spark_lakeversion.formats.delta.handle import DeltaHandle
    from spark_lakeversion.gc import GcReport
    from spark_lakeversion.locations import AllowedRoots
    from spark_lakeversion.runs import Run

from spark_lakeversion.errors import (
    AlreadyExists,
    InvalidInput,
    ReadOnlyRef,
    RefNotFound,
)
from spark_lakeversion.locations import root_uri, warehouse_uri
from spark_lakeversion.model import (
    CheckKind,
    CheckReport,
    CheckRun,
    CheckSpec,
    Commit,
    Content,
    Delete,
    DiffEntry,
    Key,
    KeyLike,
    MergeBehavior,
    MergeRequest,
    MergeResult,
    MrStatus,
    Operation,
    Put,
    Ref,
    RefType,
    ResolvedRef,
)
from spark_lakeversion.versioning import DEFAULT_BRANCH, MergeOptions, VersionStore
from spark_lakeversion.versioning.names import expression_of, validate_ref_name
from spark_lakeversion.versioning.suggest import key_not_found
from spark_lakeversion.wiring import open_store

__all__ = [
    "Branch",
    "Catalog",
    "RefLike",
    "Reference",
    "Tag",
    "Transaction",
    "branch_name",
    "connect",
    "ref_expression",
]

def connect(store_url: str | None = None, *, author: str | None = None,
            warehouse: str | None = None, allowed_locations: Iterable[str] = ()) -> Catalog:
    """Open the store at `store_url` (default: `$LAKEVERSION_SERVER_URL`, else
    `$LAKEVERSION_STORE`, else ./lakehouse).

    ``sqlite:///path``, ``sqlite:///:memory:``, ``postgresql+psycopg://...`` open a store
    in-process; ``http(s)://host:port`` talks to a lakeversion server. New Delta tables go
    under `warehouse` (default `<LAKEVERSION_HOME>/warehouse`, as the server's); tables
    may be registered under it or `allowed_locations`. Inside a run (`lakeversion run`) the
    job's catalog is on the run's server, `default_branch` is the run branch
    (`$LAKEVERSION_BRANCH`) and its commits carry the run id.
    """
    from spark_lakeversion.runs import env_branch, env_properties, env_server_url

    return Catalog(open_store(store_url or env_server_url()), author=author,
                   warehouse=warehouse, allowed_locations=allowed_locations,
                   properties=env_properties(), default_branch=env_branch())


# ---- ref arguments ---------------------------------------------------------------------

RefLike = Union[str, "Reference", Commit]


def ref_expression(value: RefLike) -> str:
    """The ref expression for a name, an expression, a handle or a commit."""
    return expression_of(value)


def branch_name(value: str | Branch) -> str:
    """A branch name from a string or a `Branch` handle (other handles are not writable)."""
    if isinstance(value, Branch):
        return value.name
    if isinstance(value, Reference):
        raise InvalidInput(f"{value.expression!r} is not a branch: writes need a branch")
    return validate_ref_name(value)


# ---- the catalog -----------------------------------------------------------------------


class Catalog:
    """Entry point: hands out ref handles over one `VersionStore`."""

    def __init__(self, store: VersionStore, *, author: str | None = None,
                 warehouse: str | None = None, allowed_locations: Iterable[str] = (),
                 properties: Mapping[str, str] | None = None,
                 default_branch: str = DEFAULT_BRANCH) -> None:
        self.store = store
        self.author = author
        self._warehouse = root_uri(warehouse) if warehouse else None
        self.allowed_locations = [root_uri(a) for a in allowed_locations]
        #: stamped on every commit and merge made through this catalog (e.g. a run's id)
        self.properties = dict(properties or {})
        self.default_branch = validate_ref_name(default_branch)

    @property
    def warehouse(self) -> str:
        """The URI new Delta tables go under (created on first use when local)."""
        self._warehouse = warehouse_uri(self._warehouse)
        return self._warehouse

    def roots(self) -> AllowedRoots:
        """Where this catalog's Delta files may live: the warehouse and allowed locations."""
        from spark_lakeversion.locations import AllowedRoots

        return AllowedRoots([self.warehouse, *self.allowed_locations])

    def branch(self, name: str | Branch | None = None) -> Branch:
        """A branch handle; without a name, `default_branch` (a run's branch in a run)."""
        return Branch(self, branch_name(self.default_branch if name is None else name))

    def run(self, on: str | Branch = DEFAULT_BRANCH, *, branch: str | None = None,
            keep_branch: bool = False, message: str | None = None,
            properties: Mapping[str, str] | None = None) -> Run:
        """A transactional run: ``with catalog.run(on="main") as run:`` writes go to
        `run.branch`, which is merged into `on` (through its gates) on a clean exit and
        kept on an exception, which propagates (see `spark_lakeversion.runs`)."""
        from spark_lakeversion.runs import Run

        return Run(self, branch_name(on), branch=branch, keep_branch=keep_branch,
                   message=message, properties=properties)

    def tag(self, name: str | Tag) -> Tag:
        return Tag(self, name.name if isinstance(name, Tag) else validate_ref_name(name))

    def ref(self, expression: RefLike) -> Reference:
        """A read-only handle on any ref expression: ``main~2``, ``v1``, a commit id..."""
        return Reference(self, ref_expression(expression))

    def branches(self) -> list[Branch]:
        return [Branch(self, r.name) for r in self.store.list_refs(RefType.BRANCH)]

    def tags(self) -> list[Tag]:
        return [Tag(self, r.name) for r in self.store.list_refs(RefType.TAG)]

    def collect_garbage(self, *, roots: AllowedRoots | Iterable[str] | None = None,
                        older_than: timedelta | str = "1d",
                        keep_commits_since: timedelta | str = "7d",
                        dry_run: bool = False, force: bool = False,
                        io: Mapping[str, str] | None = None) -> GcReport:
        """Delete files no ref, tag or retained commit reaches (see spark_lakeversion.gc).

        `roots` (the warehouse and any allowed locations) are required for a local store;
        over HTTP gc runs on the server with its own. `older_than` below 1h needs `force`.
        `io`: the FileIO properties files are opened with (`spark_lakeversion.fileio`;
        default the store's own, fixed when it was opened, else the standard
        `AWS_...`/`PYICEBERG_...` environment; not over HTTP).
        """
        from spark_lakeversion.fileio import FileIOConfig
        from spark_lakeversion.gc import collect_garbage

        if io is None and not hasattr(self.store, "gc_on_server"):
            io = self.store.io_properties or FileIOConfig.from_environment()
        return collect_garbage(self.store, roots=roots, older_than=older_than,
                               keep_commits_since=keep_commits_since, dry_run=dry_run,
                               force=force, io_properties=io)

    # ---- merge requests (`spark_lakeversion.versioning.reviews`) --------------------------
    def open_merge_request(self, source: str | Branch, target: str | Branch = DEFAULT_BRANCH,
                           *, title: str, description: str = "") -> MergeRequest:
        """Propose merging branch `source` into `target`; merged by `merge_request_merge`."""
        return self.store.open_merge_request(branch_name(source), branch_name(target),
                                             title=title, description=description,
                                             author=self.author)

    def merge_request(self, number: int) -> MergeRequest:
        return self.store.get_merge_request(number)

    def merge_requests(self, status: MrStatus | str | None = None, *,
                       before: int | None = None, limit: int = 50) -> list[MergeRequest]:
        """Newest first; `before`: the last number of the previous page."""
        return self.store.list_merge_requests(MrStatus(status) if status else None,
                                              before, limit)

    def approve_merge_request(self, number: int) -> MergeRequest:
        """Approve its source's current head (a later push to the source voids it)."""
        return self.store.approve_merge_request(number, self.author)

    def merge_merge_request(self, number: int, *, message: str | None = None) -> MergeResult:
        """Merge it through the merge path (checks, protection, approvals)."""
        return self.store.merge_merge_request(number, author=self.author, message=message)

    def close_merge_request(self, number: int) -> MergeRequest:
        return self.store.close_merge_request(number)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({getattr(self.store, 'url', type(self.store).__name__)!r})"


# ---- ref handles -----------------------------------------------------------------------


class Reference:
    """A read-only handle on a ref expression; resolved afresh on every call."""

    def __init__(self, catalog: Catalog, expression: str) -> None:
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
        target: str | Branch,
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
    ) -> MergeResult:
        """Three-way merge of this ref into branch `target`.

        `strategy` is the default for every table (normal, source-wins, target-wins);
        `behaviors` overrides it per table. `isolation_level` ("serializable" or
        "snapshot") overrides the tables' own for content-aware merges. `row_conflicts`
        ("source-wins" or "target-wins") settles rows both sides changed differently (else
        a ROW_CONFLICT). Conflicts raise `ConflictError` carrying the `MergeResult`; a dry
        run writes nothing.
        """
        return self.store.merge(self.expression, branch_name(target), MergeOptions.of(
            strategy=strategy, behaviors=behaviors or {}, isolation_level=isolation_level,
            row_conflicts=row_conflicts,
            fast_forward=fast_forward, dry_run=dry_run, message=message,
            author=self.catalog.author, expected_head=expected_target_head,
            properties={**self.catalog.properties, **(properties or {})}))

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and isinstance(other, Reference)
                and other.catalog is self.catalog and other.expression == self.expression)

    def __hash__(self) -> int:
        return hash((type(self), id(self.catalog), self.expression))

    def __str__(self) -> str:
        return self.expression

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r})"


_Named = TypeVar("_Named", bound="_NamedRef")


class _NamedRef(Reference):
    """A branch or tag handle: an exact name of a known type."""

    ref_type: RefType

    def __init__(self, catalog: Catalog, name: str) -> None:
        super().__init__(catalog, validate_ref_name(name))

    @property
    def name(self) -> str:
        return self.expression

    def get_ref(self) -> Ref:
        ref = self.store.get_ref(self.name)
        if ref.type is not self.ref_type:
            raise RefNotFound(f"no {self.ref_type.value.lower()} named {self.name!r} "
                              f"(it is a {ref.type.value.lower()})")
        return ref

    @property
    def head(self) -> Commit:
        return self.store.get_commit(self.get_ref().head)

    def previous(self, n: int = 1) -> Reference:
        """Its `n`-th previous head, from the reflog (``name@{n}``; 0 is the head): on a
        protected branch, ``previous(1)`` is the state before its last publication."""
        return self.catalog.ref(f"{self.name}@{{{int(n)}}}")

    def exists(self) -> bool:
        try:
            self.get_ref()
        except RefNotFound:
            return False
        return True

    def create(self: _Named, from_: RefLike = DEFAULT_BRANCH, *,
               exist_ok: bool = False) -> _Named:
        """Create the ref at what `from_` resolves to (O(1): nothing is copied);
        `exist_ok` tolerates an existing ref of the same type."""
        source = ref_expression(from_)
        try:
            self.store.create_ref(self.name, self.ref_type, from_ref=source)
        except AlreadyExists:
            if not exist_ok or self.store.get_ref(self.name).type is not self.ref_type:
                raise
        return self

    def delete(self, *, expected_head: str | None = None, force: bool = False) -> None:
        """Delete this ref. A branch holding commits that no other branch or tag holds
        (`UnmergedBranch`, git's ``-d``) or a protected branch (an admin action) only with
        `force`."""
        self.store.delete_ref(self.name, self.ref_type, expected_head=expected_head,
                              force=force)


class Tag(_NamedRef):
    """An immutable named commit."""

    ref_type = RefType.TAG


class Branch(_NamedRef):
    """A movable ref: the only kind writes go to."""

    ref_type = RefType.BRANCH

    def commit(self, operations: Sequence[Operation], *, message: str,
               properties: Mapping[str, str] | None = None,
               expected_head: str | None = None) -> Commit:
        """Apply Put/Delete operations atomically as one commit."""
        return self.store.commit(self.name, list(operations), message=message,
                                 author=self.catalog.author,
                                 properties={**self.catalog.properties, **(properties or {})}
                                 or None,
                                 expected_head=expected_head)

    def transaction(self, message: str = "transaction", *,
                    properties: Mapping[str, str] | None = None) -> Transaction:
        """Collect table changes and commit them as one commit on exit; nothing on error."""
        return Transaction(self, message, properties)

    def ref_for_write(self) -> Ref:
        """This branch's ref before a write: a tag of this name is `ReadOnlyRef`."""
        ref = self.store.get_ref(self.name)
        if ref.type is not RefType.BRANCH:
            raise ReadOnlyRef(f"{self.name!r} is a {ref.type.value.lower()}, not a branch: "
                              "it is read-only")
        return ref

    def reset(self, to: RefLike, *, expected_head: str | None = None,
              force: bool = False) -> Branch:
        """Point this branch at what `to` resolves to (like ``git reset --hard``); a
        protected branch only with `force` (an admin action) and only to a state published
        on it (its first-parent history, e.g. ``previous(1)`` after a merge)."""
        self.ref_for_write()
        self.store.assign_ref(self.name, ref_expression(to), expected_head=expected_head,
                              force=force)
        return self

    # ---- merge gates ----------------------------------------------------------------------
    @property
    def protected(self) -> bool:
        return self.name in self.store.protected_branches()

    def protect(self, *, require_approvals: int | None = None) -> bool:
        """Refuse direct writes to this branch: merges (through its checks) only;
        `require_approvals`: merges then need that many approvals of a merge request."""
        return self.store.protect_branch(self.name, require_approvals)

    def unprotect(self) -> bool:
        return self.store.unprotect_branch(self.name)

    def add_check(self, name: str, *, sql: str | None = None, python: str | None = None,
                  webhook: str | None = None, notify: str | None = None,
                  tables: Sequence[str] = (), timeout: float = 60.0,
                  allow_missing: bool = False) -> CheckSpec:
        """Attach one check to merges into this branch: give exactly one of `sql` (a query
        selecting violating rows), `python` (``module:function`` or an entry point of group
        ``spark_lakeversion.checks``), `webhook` (a URL; 2xx passes) or `notify` (a URL
        told after each merge lands; never blocks). It is validated first, a SQL check by
        running it once on this branch; `allow_missing` accepts a table no ref has yet."""
        given = {CheckKind.SQL: sql, CheckKind.PYTHON: python, CheckKind.WEBHOOK: webhook,
                 CheckKind.NOTIFY: notify}
        chosen = [(kind, spec) for kind, spec in given.items() if spec is not None]
        if len(chosen) != 1:
            raise InvalidInput("give exactly one of sql=, python=, webhook=, notify=")
        kind, spec = chosen[0]
        return self.store.add_check(CheckSpec(self.name, name, kind, spec, tuple(tables),
                                              timeout), allow_missing)

    def test_check(self, name: str, source: RefLike | None = None) -> CheckReport:
        """Run check `name` on the preview of merging `source` into this branch (on the
        branch as it is without one): the report; nothing is merged or recorded."""
        return self.store.test_check(self.name, name,
                                     None if source is None else ref_expression(source))

    def remove_check(self, name: str) -> bool:
        return self.store.remove_check(self.name, name)

    def checks(self) -> list[CheckSpec]:
        return self.store.list_checks(self.name)

    def check_runs(self, limit: int = 50) -> list[CheckRun]:
        """The latest check runs of merges into this branch, newest first."""
        return self.store.check_runs(self.name, limit)

    def revert(self, commit: RefLike, *, dry_run: bool = False) -> MergeResult:
        """Undo one commit's changes on this branch, as a new commit."""
        commit_id = self.store.resolve(ref_expression(commit)).commit_id
        return self.store.revert(commit_id, self.name, dry_run=dry_run,
                                 author=self.catalog.author)

    def cherry_pick(self, *commits: RefLike, dry_run: bool = False) -> MergeResult:
        ids = [self.store.resolve(ref_expression(c)).commit_id for c in commits]
        if not ids:
            raise InvalidInput("cherry_pick needs at least one commit")
        return self.store.cherry_pick(ids, self.name, dry_run=dry_run,
                                      author=self.catalog.author)

    def rollback_table(self, key: KeyLike, *, to: RefLike, message: str | None = None,
                       properties: Mapping[str, str] | None = None) -> Commit:
        """Set one table to its state at `to` (deleting it if absent there), as a new commit
        carrying the catalog's properties (a run's id) and `properties`."""
        return self.store.rollback_table(
            self.name, Key.of(key), ref_expression(to), author=self.catalog.author,
            message=message, properties={**self.catalog.properties, **(properties or {})})


class Transaction:
    """Table changes staged in memory and committed atomically as one commit.

    The commit carries the branch head seen at ``__enter__`` as its expected head, so it
    lands only if no table it touches changed meanwhile (else `ConflictError`). Leaving
    the block by an exception commits nothing. Reads see the head at enter plus the
    changes staged so far.
    """

    def __init__(self, branch: Branch, message: str,
                 properties: Mapping[str, str] | None = None) -> None:
        self.branch = branch
        self.message = message
        self.properties = dict(properties or {})
        self.base_head: str | None = None
        self.commit: Commit | None = None  # set once the transaction has committed
        self._staged: dict[Key, Operation] = {}
        self._open = False
        self._entered = False

    @property
    def operations(self) -> list[Operation]:
        return list(self._staged.values())

    def put(self, key: KeyLike, content: Content) -> Transaction:
        self._check_open()
        if not isinstance(content, Content):
            raise InvalidInput(f"put() needs a Content value, not {type(content).__name__}")
        k = Key.of(key)
        self._staged[k] = Put(k, content)
        return self

    def delete(self, key: KeyLike) -> Transaction:
        self._check_open()
        k = Key.of(key)
        self._staged[k] = Delete(k)
        return self

    def get(self, key: KeyLike) -> Content | None:
        """The key's state as this transaction sees it (None if absent)."""
        self._check_open()
        k = Key.of(key)
        if k in self._staged:
            staged = self._staged[k]
            return staged.content if isinstance(staged, Put) else None
        assert self.base_head is not None
        return self.branch.store.get_content(self.base_head, k)

    def __enter__(self) -> Transaction:
        if self._entered:
            raise InvalidInput("a transaction can be entered only once")
        self.base_head = self.branch.ref_for_write().head
        self._entered = self._open = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._open = False
        if exc_type is not None:
            self._staged.clear()
            return
        if not self._staged:
            return
        operations = self.operations
        self._staged.clear()
        self.commit = self.branch.commit(operations, message=self.message,
                                         properties=self.properties or None,
                                         expected_head=self.base_head)

    def _check_open(self) -> None:
        if not self._open:
            raise InvalidInput("use the transaction inside its `with` block")

