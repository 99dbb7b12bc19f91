"""The SQLAlchemy version store: SQLite (embedded default, or `:memory:`) and PostgreSQL.

Tables:
- ``lv_nodes``   content-addressed key-tree nodes (immutable, shared by every commit);
- ``lv_contents`` content-addressed table/namespace states (immutable, deduplicated);
- ``lv_commits`` commits: parents, tree root, metadata, generation number;
- ``lv_commit_keys`` keys each commit changed (for `log --table`);
- ``lv_refs``    branch/tag -> head; the only mutable rows, moved by compare-and-swap;
- ``lv_reflog``  every ref movement with its time (for `ref#timestamp`);
- ``lv_gc_state`` gc's epoch and cutoffs (`spark_lakeversion.store.gc_state_sql`).

Immutable rows are written before the ref moves, in the same transaction, so a ref never
points at a missing commit even if the process dies mid-commit.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from spark_lakeversion.errors import (
    AlreadyExists,
    CommitNotFound,
    ConflictError,
    HistoryCollected,
    InvalidInput,
    InvalidRefExpression,
    KeyNotFound,
    ReadOnlyRef,
    ReferenceConflict,
    RefNotFound,
)
from spark_lakeversion.formats.merger import MergeContext
from spark_lakeversion.limits import check_commit
from spark_lakeversion.locations import check_new_key
from spark_lakeversion.merge.engine import Changes, MergePlan, plan_merge
from spark_lakeversion.store import gc_state_sql as gc_state
from spark_lakeversion.store import location_index
from spark_lakeversion.store.base import (
    DEFAULT_AUTHOR,
    DEFAULT_BRANCH,
    TABLE_STATES_PAGE,
    LogPage,
    TableStatesPage,
    VersionStore,
    decode_page_token,
    encode_page_token,
)
from spark_lakeversion.store.gc_state import GcEpochChanged, GcState
from spark_lakeversion.store.model import (
    Commit,
    Conflict,
    ConflictType,
    Content,
    Delete,
    DiffEntry,
    DiffKind,
    Key,
    KeyLike,
    KeyMergeDetail,
    MergeAction,
    MergeBehavior,
    MergeResult,
    Operation,
    Put,
    Ref,
    ReflogEntry,
    RefType,
    ResolvedRef,
)
from spark_lakeversion.store.names import (
    FULL_HASH_LENGTH,
    is_commit_hash,
    parse_ref_expression,
    validate_ref_name,
)
from spark_lakeversion.store.retention import reflog_heads, walk_retained
from spark_lakeversion.store.tree import Node, Trees, TreeWriter, digest

SCHEMA_VERSION = "1"
MAX_CAS_ATTEMPTS = 100
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)

metadata = sa.MetaData()
nodes_table = sa.Table(
    "lv_nodes", metadata,
    sa.Column("hash", sa.String(40), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
contents_table = sa.Table(
    "lv_contents", metadata,
    sa.Column("hash", sa.String(40), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)
commits_table = sa.Table(
    "lv_commits", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("parents", sa.Text, nullable=False),
    sa.Column("root", sa.String(40), nullable=True),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
)
commit_keys_table = sa.Table(
    "lv_commit_keys", metadata,
    sa.Column("commit_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Index("lv_commit_keys_by_key", "key"),
)
refs_table = sa.Table(
    "lv_refs", metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("type", sa.String(8), nullable=False),
    sa.Column("head", sa.String(40), nullable=False),
)
reflog_table = sa.Table(
    "lv_reflog", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("head", sa.String(40), nullable=True),  # NULL: the ref was deleted
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Index("lv_reflog_by_name", "name", "ts_us"),
)
locations_table = location_index.make_table(metadata)
meta_table = sa.Table(
    "lv_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


# statements built once: the commit path runs them thousands of times a second
_SELECT_REF = sa.select(refs_table).where(refs_table.c.name == sa.bindparam("ref_name"))
_MOVE_BRANCH = refs_table.update().where(
    refs_table.c.name == sa.bindparam("ref_name"),
    refs_table.c.head == sa.bindparam("expected_head"),
    refs_table.c.type == RefType.BRANCH.value,
).values(head=sa.bindparam("new_head"))
_INSERT_REFLOG = reflog_table.insert()
_INSERT_COMMIT = commits_table.insert()
_INSERT_COMMIT_KEYS = commit_keys_table.insert()


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def _to_datetime(ts_us: int) -> datetime:
    return datetime.fromtimestamp(ts_us / 1_000_000, tz=timezone.utc)


def _to_us(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


class _LruCache(OrderedDict[str, Any]):
    """A small bounded cache for immutable rows (nodes, contents, commits)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.lock = threading.Lock()

    def get_value(self, key: str) -> Any:
        with self.lock:
            value = self.get(key)
            if value is not None:
                self.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        with self.lock:
            self[key] = value
            if len(self) > self.capacity:
                self.popitem(last=False)


#: merges changing at most this many tables are applied to the target's tree directly
SMALL_MERGE = 16


@dataclass(frozen=True)
class _MergeInput:
    """The three trees of a merge and what was read from them while planning."""

    base_root: str | None
    target_root: str | None
    source_root: str | None
    source_changes: Changes
    target_values: Mapping[Key, Content]


class SqlVersionStore(VersionStore):
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = self._create_engine(url)
        self._dialect = self._engine.dialect.name
        # SQLite takes one writer at a time; serialising in-process writers avoids
        # busy-retry storms between threads (other processes wait on busy_timeout)
        self._write_lock = threading.RLock() if self._dialect == "sqlite" else None
        # an in-memory database is one shared connection: reads must take turns too
        self._read_lock = self._write_lock if self._engine.pool.__class__ is StaticPool \
            else None
        self._nodes = _LruCache(200_000)
        self._contents = _LruCache(200_000)
        self._commits = _LruCache(100_000)
        self._trees = Trees(self._load_node)
        self._insert_ignore_statements: dict[str, Any] = {}
        self._initialize()

    # ---- engine and schema --------------------------------------------------------------
    @staticmethod
    def _create_engine(url: str) -> Engine:
        if url.startswith("sqlite"):
            memory = url in ("sqlite://", "sqlite:///:memory:")
            kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False,
                                                        "timeout": 60}}
            if memory:
                kwargs["poolclass"] = StaticPool
            engine = sa.create_engine(url, **kwargs)

            @sa.event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA busy_timeout=60000")
                if not memory:
                    cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            @sa.event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                # writers take the lock up front: no deadlock on read->write upgrade
                immediate = conn.get_execution_options().get("lv_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        try:
            return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except Exception as exc:
            raise InvalidInput(f"cannot open store {url!r}: {exc}") from exc

    def _initialize(self) -> None:
        """Create the schema and `main` once; safe when several processes open at once."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with self._write() as conn:
                    metadata.create_all(conn, checkfirst=True)
                    gc_state.create(conn)
                self._bootstrap()
                return
            except (IntegrityError, OperationalError, ProgrammingError) as exc:
                # a concurrent first open is creating the same rows: look again
                retry = isinstance(exc, IntegrityError) or "locked" in str(exc) \
                    or "already exists" in str(exc)
                if not retry or time.monotonic() > deadline:
                    raise InvalidInput(f"cannot open store {self.url!r}: {exc.orig}") from exc
                time.sleep(0.05)

    def _bootstrap(self) -> None:
        root = self._root_commit()
        with self._write() as conn:
            if conn.execute(sa.select(commits_table.c.id).where(
                    commits_table.c.id == root.id)).first() is None:
                conn.execute(commits_table.insert().values(self._commit_row(root, 0)))
                conn.execute(meta_table.insert().values(key="schema_version",
                                                        value=SCHEMA_VERSION))
            if conn.execute(sa.select(refs_table.c.name).where(
                    refs_table.c.name == DEFAULT_BRANCH)).first() is None and \
                    conn.execute(sa.select(meta_table.c.key).where(
                        meta_table.c.key == "initialized")).first() is None:
                conn.execute(refs_table.insert().values(
                    name=DEFAULT_BRANCH, type=RefType.BRANCH.value, head=root.id))
                conn.execute(meta_table.insert().values(key="initialized", value="1"))
                self._reflog(conn, DEFAULT_BRANCH, root.id, "init")
        self._backfill_locations()

    def _backfill_locations(self) -> None:
        """Index the locations of contents written before the index existed (once)."""
        with self._read() as conn:
            if conn.execute(sa.select(meta_table.c.key).where(
                    meta_table.c.key == location_index.BACKFILLED)).first() is not None:
                return
        with self._write() as conn:
            if conn.execute(sa.select(meta_table.c.key).where(
                    meta_table.c.key == location_index.BACKFILLED)).first() is not None:
                return
            result = conn.execute(sa.select(contents_table.c.data)).scalars()
            while True:
                batch = result.fetchmany(1000)
                if not batch:
                    break
                self._insert_ignore(locations_table, location_index.backfill_rows(batch), conn)
            self._insert_ignore(meta_table, [{"key": location_index.BACKFILLED, "value": "1"}],
                                conn)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite); retried on lock timeouts."""
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        try:
            with self._engine.connect().execution_options(lv_write=True) as conn, \
                    conn.begin():
                yield conn
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        lock = self._read_lock
        if lock is not None:
            lock.acquire()
        try:
            with self._engine.connect() as conn:
                yield conn
        finally:
            if lock is not None:
                lock.release()

    def close(self) -> None:
        self._engine.dispose()

    def _insert_ignore(self, table: sa.Table, rows: list[dict[str, Any]],
                       conn: Connection) -> None:
        """Insert immutable, content-addressed rows; a row already there is the same row."""
        if not rows:
            return
        statement = self._insert_ignore_statements.get(table.name)
        if statement is None:
            if self._dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                statement = pg_insert(table).on_conflict_do_nothing()
            else:
                statement = table.insert().prefix_with("OR IGNORE")
            self._insert_ignore_statements[table.name] = statement
        conn.execute(statement, rows)

    # ---- immutable rows ---------------------------------------------------------------
    def _load_node(self, h: str) -> Node:
        node = self._nodes.get_value(h)
        if node is None:
            with self._read() as conn:
                row = conn.execute(sa.select(nodes_table.c.data).where(
                    nodes_table.c.hash == h)).first()
            if row is None:
                raise CommitNotFound(f"tree node {h} is missing from the store")
            node = Node.decode(row[0])
            self._nodes.put(h, node)
        return node  # type: ignore[no-any-return]

    def _load_contents(self, hashes: Iterable[str]) -> dict[str, Content]:
        found: dict[str, Content] = {}
        missing = []
        for h in set(hashes):
            cached = self._contents.get_value(h)
            if cached is None:
                missing.append(h)
            else:
                found[h] = cached
        for start in range(0, len(missing), 500):
            batch = missing[start:start + 500]
            with self._read() as conn:
                rows = conn.execute(sa.select(contents_table.c.hash, contents_table.c.data)
                                    .where(contents_table.c.hash.in_(batch))).all()
            for h, data in rows:
                content = Content.from_dict(json.loads(data))
                self._contents.put(h, content)
                found[h] = content
        return found

    @staticmethod
    def _content_hash(content: Content) -> tuple[str, str]:
        data = content.canonical()
        return digest(data.encode()), data

    def _root_commit(self) -> Commit:
        return self._make_commit((), None, "lakeversion", "initial commit",
                                 _to_us(EPOCH), {})

    @staticmethod
    def _make_commit(parents: tuple[str, ...], root: str | None, author: str, message: str,
                     ts_us: int, properties: Mapping[str, str]) -> Commit:
        payload = json.dumps([list(parents), root, author, message, ts_us,
                              sorted(properties.items())], separators=(",", ":"))
        commit_id = hashlib.blake2b(payload.encode(), digest_size=20).hexdigest()
        return Commit(commit_id, parents, author, message, _to_datetime(ts_us),
                      dict(properties), root)

    @staticmethod
    def _commit_row(commit: Commit, generation: int) -> dict[str, Any]:
        return {
            "id": commit.id, "parents": json.dumps(list(commit.parents)), "root": commit.root,
            "author": commit.author, "message": commit.message,
            "ts_us": _to_us(commit.timestamp), "generation": generation,
            "properties": json.dumps(commit.properties, sort_keys=True),
        }

    def _commit_and_generation(self, commit_id: str) -> tuple[Commit, int]:
        cached = self._commits.get_value(commit_id)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        with self._read() as conn:
            row = conn.execute(sa.select(commits_table).where(
                commits_table.c.id == commit_id)).mappings().first()
        if row is None:
            raise CommitNotFound(f"commit {commit_id} not found")
        commit = Commit(row["id"], tuple(json.loads(row["parents"])), row["author"],
                        row["message"], _to_datetime(row["ts_us"]),
                        json.loads(row["properties"]), row["root"])
        self._commits.put(commit_id, (commit, row["generation"]))
        return commit, row["generation"]

    def get_commit(self, commit_id: str) -> Commit:
        if not isinstance(commit_id, str) or not is_commit_hash(commit_id):
            raise InvalidRefExpression(f"{commit_id!r} is not a commit id")
        return self._commit_and_generation(self._expand_hash(commit_id))[0]

    def _generation(self, commit_id: str) -> int:
        return self._commit_and_generation(commit_id)[1]

    # ---- refs -------------------------------------------------------------------------
    def _reflog(self, conn: Connection, name: str, head: str | None, operation: str,
                ts_us: int | None = None) -> None:
        conn.execute(_INSERT_REFLOG, {"name": name, "head": head, "ts_us": ts_us or _now_us(),
                                      "operation": operation})

    def list_refs(self, type: RefType | None = None) -> list[Ref]:
        query = sa.select(refs_table).order_by(refs_table.c.name)
        if type is not None:
            query = query.where(refs_table.c.type == RefType(type).value)
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [Ref(r["name"], RefType(r["type"]), r["head"]) for r in rows]

    def _find_ref(self, name: str) -> Ref | None:
        with self._read() as conn:
            row = conn.execute(_SELECT_REF, {"ref_name": name}).first()
        return Ref(row[0], RefType(row[1]), row[2]) if row else None

    def get_ref(self, name: str) -> Ref:
        validate_ref_name(name)
        ref = self._find_ref(name)
        if ref is None:
            raise RefNotFound(f"no branch or tag named {name!r}")
        return ref

    def create_ref(self, name: str, type: RefType = RefType.BRANCH,
                   from_ref: str = DEFAULT_BRANCH) -> Ref:
        validate_ref_name(name)
        ref_type = RefType(type)
        head = self.resolve(from_ref).commit_id
        self._require_retained(None, [head])
        try:
            with self._write() as conn:
                self._require_retained(conn, [head])
                conn.execute(refs_table.insert().values(name=name, type=ref_type.value,
                                                        head=head))
                self._reflog(conn, name, head, f"create {ref_type.value.lower()}")
        except IntegrityError:
            existing = self._find_ref(name)
            kind = existing.type.value.lower() if existing else "ref"
            raise AlreadyExists(f"a {kind} named {name!r} already exists") from None
        return Ref(name, ref_type, head)

    def delete_ref(self, name: str, type: RefType | None = None,
                   expected_head: str | None = None) -> None:
        ref = self.get_ref(name)
        if type is not None and ref.type is not RefType(type):
            raise RefNotFound(f"{name!r} is a {ref.type.value.lower()}, "
                              f"not a {RefType(type).value.lower()}")
        if ref.type is RefType.BRANCH and name == DEFAULT_BRANCH:
            raise InvalidInput(f"the default branch {DEFAULT_BRANCH!r} cannot be deleted")
        expected = self._expand_hash(expected_head) if expected_head else ref.head
        with self._write() as conn:
            deleted = conn.execute(refs_table.delete().where(
                refs_table.c.name == name, refs_table.c.head == expected)).rowcount
            if deleted:
                self._reflog(conn, name, None, "delete")
        if not deleted:
            raise ReferenceConflict(f"{name!r} is no longer at {expected}: not deleted")

    def assign_ref(self, name: str, to: str, expected_head: str | None = None) -> Ref:
        ref = self.get_ref(name)
        if ref.type is RefType.TAG:
            raise ReadOnlyRef(f"tag {name!r} is immutable: delete it and create it again")
        target = self.resolve(to).commit_id
        expected = self._expand_hash(expected_head) if expected_head else ref.head
        self._require_retained(None, [target])
        with self._write() as conn:
            self._require_retained(conn, [target])
            self._cas(conn, name, expected, target, "assign")
        return Ref(name, ref.type, target)

    def _cas(self, conn: Connection, branch: str, expected: str, new: str,
             operation: str, ts_us: int | None = None) -> None:
        """Move `branch` from `expected` to `new` or raise ReferenceConflict."""
        moved = conn.execute(_MOVE_BRANCH, {"ref_name": branch, "expected_head": expected,
                                            "new_head": new}).rowcount
        if not moved:
            raise ReferenceConflict(f"branch {branch!r} moved: it is no longer at {expected}")
        self._reflog(conn, branch, new, operation, ts_us)

    def _expand_hash(self, text: str) -> str:
        if not isinstance(text, str) or not is_commit_hash(text):
            raise InvalidRefExpression(f"{text!r} is not a commit id (at least 8 hex digits)")
        if len(text) == 40:
            if self._commits.get_value(text) is not None:
                return text
            with self._read() as conn:
                if conn.execute(sa.select(commits_table.c.id).where(
                        commits_table.c.id == text)).first():
                    return text
            raise CommitNotFound(f"commit {text} not found")
        with self._read() as conn:
            rows = conn.execute(sa.select(commits_table.c.id).where(
                commits_table.c.id.like(text + "%")).limit(2)).all()
        if not rows:
            raise CommitNotFound(f"no commit id starts with {text}")
        if len(rows) > 1:
            raise InvalidRefExpression(f"commit prefix {text} is ambiguous: use more digits")
        return str(rows[0][0])

    def resolve(self, expression: str) -> ResolvedRef:
        expr = parse_ref_expression(expression)
        # a full commit id never names a ref (names.py), so it needs no ref lookup
        ref = None if len(expr.base) == FULL_HASH_LENGTH and is_commit_hash(expr.base) \
            else self._find_ref(expr.base)
        if ref is not None:
            head = ref.head
        elif is_commit_hash(expr.base):
            head = self._expand_hash(expr.base)
        else:
            raise RefNotFound(f"no branch, tag or commit named {expr.base!r}")
        if expr.as_of is not None:
            head = self._as_of(ref, head, expr.as_of, expression)
        for _ in range(expr.ancestors):
            commit = self._commit_and_generation(head)[0]
            if not commit.parents:
                raise RefNotFound(f"{expression!r} goes back past the first commit")
            head = commit.parents[0]
        writable = ref is not None and ref.type is RefType.BRANCH and expr.is_plain
        return ResolvedRef(expression, head, ref.name if writable and ref else None, ref)

    def _as_of(self, ref: Ref | None, head: str, when: datetime, expression: str) -> str:
        when_us = _to_us(when)
        if ref is not None:
            with self._read() as conn:
                row = conn.execute(
                    sa.select(reflog_table.c.head).where(
                        reflog_table.c.name == ref.name, reflog_table.c.ts_us <= when_us)
                    .order_by(reflog_table.c.ts_us.desc(), reflog_table.c.seq.desc())
                    .limit(1)).first()
            if row is None or row[0] is None:
                raise RefNotFound(f"{ref.name!r} did not exist at {when.isoformat()}")
            return str(row[0])
        commit = self._commit_and_generation(head)[0]  # a commit: walk its first parents
        while commit.timestamp > when:
            if not commit.parents:
                raise RefNotFound(f"{expression!r}: no commit that old")
            commit = self._commit_and_generation(commit.parents[0])[0]
        return commit.id

    def _writable_branch(self, branch: str) -> Ref:
        if not isinstance(branch, str):
            raise InvalidInput("a branch name must be a string")
        resolved = self.resolve(branch)
        if resolved.branch is None:
            if resolved.ref is not None and resolved.ref.type is RefType.TAG and \
                    resolved.expression == resolved.ref.name:
                raise ReadOnlyRef(f"tag {branch!r} is read-only: write to a branch")
            raise ReadOnlyRef(f"{branch!r} is not a branch and is read-only: "
                              "commits, tags and time-travel expressions cannot be written")
        assert resolved.ref is not None
        return resolved.ref

    # ---- contents -----------------------------------------------------------------------
    def _root_of(self, commit_id: str) -> str | None:
        return self._commit_and_generation(commit_id)[0].root

    def _values(self, root: str | None, keys: Iterable[Key]) -> dict[Key, Content]:
        by_stored = {k.stored: k for k in keys}
        hashes = self._trees.get_many(root, sorted(by_stored))
        contents = self._load_contents(hashes.values())
        return {by_stored[s]: contents[h] for s, h in hashes.items()}

    def get_contents(self, ref: str, keys: Iterable[KeyLike]) -> dict[Key, Content]:
        wanted = [Key.of(k) for k in keys]
        return self._values(self._root_of(self.resolve(ref).commit_id), wanted)

    def list_keys(self, ref: str, prefix: KeyLike | None = None) -> list[tuple[Key, Content]]:
        root = self._root_of(self.resolve(ref).commit_id)
        if prefix is None or prefix == "" or prefix == ():
            lo, hi = "", None
        else:
            stored = Key.of(prefix).stored
            lo, hi = stored + "\x00", stored + "\x01"
        entries = list(self._trees.items(root, lo, hi))
        contents = self._load_contents(h for _, h in entries)
        return [(Key.from_stored(k), contents[h]) for k, h in entries]

    def _changes(self, from_root: str | None, to_root: str | None) -> Changes:
        raw = list(self._trees.diff(from_root, to_root))
        contents = self._load_contents(h for _, a, b in raw for h in (a, b) if h)
        return {Key.from_stored(k): (contents[a] if a else None, contents[b] if b else None)
                for k, a, b in raw}

    def diff(self, from_ref: str, to_ref: str) -> list[DiffEntry]:
        a = self._root_of(self.resolve(from_ref).commit_id)
        b = self._root_of(self.resolve(to_ref).commit_id)
        out = []
        for key, (before, after) in sorted(self._changes(a, b).items()):
            kind = DiffKind.ADDED if before is None else \
                DiffKind.REMOVED if after is None else DiffKind.CHANGED
            out.append(DiffEntry(key, kind, before, after))
        return out

    # ---- commits -------------------------------------------------------------------------
    @staticmethod
    def _operations_to_changes(operations: Sequence[Operation]) -> dict[Key, Content | None]:
        changes: dict[Key, Content | None] = {}
        for op in operations:
            if isinstance(op, Put):
                if not isinstance(op.content, Content):
                    raise InvalidInput(f"Put({op.key}) needs a Content value")
                value: Content | None = op.content
            elif isinstance(op, Delete):
                value = None
            else:
                raise InvalidInput(f"unknown operation {op!r}: use Put or Delete")
            key = Key.of(op.key)
            if key in changes:
                raise InvalidInput(f"key {key} appears twice in one commit")
            changes[key] = value
        return changes

    def _write_commit(
        self,
        conn: Connection,
        branch: str,
        expected_head: str,
        parents: tuple[str, ...],
        base_root: str | None,
        changes: Mapping[Key, Content | None],
        author: str,
        message: str,
        properties: Mapping[str, str],
        operation: str,
        same_tree_from: tuple[str | None, Mapping[Key, Content | None]] | None = None,
    ) -> Commit:
        """Persist the tree change and the commit, then CAS the branch, in `conn`'s tx.

        `changes` are relative to the first parent (what the commit records); the new tree
        is `base_root` + `changes`, or, when given, `same_tree_from` = (another root, the
        changes that turn it into that same tree): trees are canonical, so either way gives
        the same root, and the caller picks the cheaper one.
        """
        writer = TreeWriter()
        content_rows = []
        tree_changes: dict[str, str | None] = {}
        for key, content in changes.items():
            if content is None:
                tree_changes[key.stored] = None
            else:
                h, data = self._content_hash(content)
                content_rows.append({"hash": h, "data": data})
                tree_changes[key.stored] = h
                self._contents.put(h, content)
        start_root = base_root
        if same_tree_from is not None:
            start_root, other_changes = same_tree_from
            tree_changes = {
                key.stored: None if content is None else self._content_hash(content)[0]
                for key, content in other_changes.items()}
        root = self._trees.apply(start_root, tree_changes, writer)
        ts_us = max(_now_us(), _to_us(self._commit_and_generation(parents[0])[0].timestamp) + 1)
        commit = self._make_commit(parents, root, author, message, ts_us, properties)
        generation = 1 + max(self._generation(p) for p in parents)
        self._insert_ignore(contents_table, content_rows, conn)
        self._insert_ignore(locations_table, location_index.rows(changes.values()), conn)
        self._insert_ignore(nodes_table, [{"hash": h, "data": data}
                                          for h, data in writer.encoded.items()], conn)
        conn.execute(_INSERT_COMMIT, self._commit_row(commit, generation))
        if changes:
            conn.execute(_INSERT_COMMIT_KEYS,
                         [{"commit_id": commit.id, "key": _key_text(k)} for k in changes])
        # the ref moved at the commit's own time, so `branch#<commit time>` finds it
        self._cas(conn, branch, expected_head, commit.id, operation, ts_us)
        for h, n in writer.nodes.items():
            self._nodes.put(h, n)
        return commit

    def commit(
        self,
        branch: str,
        operations: Sequence[Operation],
        *,
        message: str,
        author: str | None = None,
        properties: Mapping[str, str] | None = None,
        expected_head: str | None = None,
        expected_gc_epoch: int | None = None,
    ) -> Commit:
        return self._commit_operations(branch, operations, message=message, author=author,
                                       properties=properties, expected_head=expected_head,
                                       expected_gc_epoch=expected_gc_epoch)

    def _commit_operations(
        self,
        branch: str,
        operations: Sequence[Operation],
        *,
        message: str,
        author: str | None,
        properties: Mapping[str, str] | None,
        expected_head: str | None,
        expected_gc_epoch: int | None = None,
        from_commits: Sequence[str] = (),
    ) -> Commit:
        changes = self._operations_to_changes(operations)
        for key, value in changes.items():
            if value is not None:  # a new or changed key: it must be a safe name
                check_new_key(key.elements, "key element")
        if not isinstance(message, str):
            raise InvalidInput("a commit message must be a string")
        props = _check_properties(properties)
        check_commit(self.limits, message=message, author=author, properties=props,
                     changes=changes)
        ref = self._writable_branch(branch)
        base = self._expand_hash(expected_head) if expected_head else ref.head
        base_values = self._values(self._root_of(base), changes) if expected_head else None
        head = ref.head
        for _ in range(MAX_CAS_ATTEMPTS):
            head_root = self._root_of(head)
            if base_values is not None and head != base:
                self._check_unchanged(ref.name, base, base_values, head_root, changes)
            try:
                with self._write() as conn:
                    if expected_gc_epoch is not None or from_commits:
                        self._check_gc_epoch(conn, expected_gc_epoch)
                        self._require_retained(conn, from_commits)
                    return self._write_commit(conn, ref.name, head, (head,), head_root, changes,
                                              author or DEFAULT_AUTHOR, message, props, "commit")
            except ReferenceConflict:
                if base_values is None:  # based on the head we read: re-check from there
                    base, base_values = head, self._values(head_root, changes)
                head = self.get_ref(ref.name).head
        raise ReferenceConflict(f"branch {ref.name!r} kept moving; gave up after "
                                f"{MAX_CAS_ATTEMPTS} attempts")

    def location_owner(self, location: str, content_id: str | None = None
                       ) -> tuple[str, str] | None:
        parsed = location_index.canonical(location)
        if parsed is None:
            raise InvalidInput(f"{location!r} is not a location")
        with self._read() as conn:
            return location_index.owner(conn, locations_table, parsed, content_id)

    def _check_unchanged(self, branch: str, base: str, base_values: Mapping[Key, Content],
                         head_root: str | None, keys: Iterable[Key]) -> None:
        current = self._values(head_root, keys)
        changed = [k for k in keys if current.get(k) != base_values.get(k)]
        if changed:
            conflicts = [Conflict(ConflictType.VALUE_DIFFERS, k,
                                  f"{k} changed on {branch!r} since {base[:12]}")
                         for k in changed]
            raise ConflictError(
                f"{', '.join(map(str, changed))} changed on {branch!r} since the expected head "
                f"{base[:12]}: re-read and try again", conflicts)

    # ---- history ------------------------------------------------------------------------
    def _ancestors(self, head: str) -> Iterator[Commit]:
        """Every ancestor once, newest generation first (git's date-order-ish walk)."""
        seen = {head}
        heap = [self._walk_order(head)]
        while heap:
            *_, commit_id = heapq.heappop(heap)
            commit = self._commit_and_generation(commit_id)[0]
            yield commit
            for parent in commit.parents:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(heap, self._walk_order(parent))

    def _walk_order(self, commit_id: str) -> tuple[int, float, str]:
        commit, generation = self._commit_and_generation(commit_id)
        return -generation, -commit.timestamp.timestamp(), commit_id

    def log(self, ref: str, *, key: KeyLike | None = None, limit: int = 50,
            page_token: str | None = None) -> LogPage:
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInput("limit must be a positive integer")
        skip = decode_page_token(page_token) if page_token else 0
        head = self.resolve(ref).commit_id
        touching: set[str] | None = None
        if key is not None:
            with self._read() as conn:
                touching = {r[0] for r in conn.execute(sa.select(
                    commit_keys_table.c.commit_id).where(
                        commit_keys_table.c.key == _key_text(Key.of(key))))}
        out: list[Commit] = []
        seen = 0
        for commit in self._ancestors(head):
            if touching is not None and commit.id not in touching:
                continue
            if seen >= skip:
                if len(out) == limit:
                    return LogPage(out, encode_page_token(skip + limit))
                out.append(commit)
            seen += 1
        return LogPage(out, None)

    def merge_base(self, a: str, b: str) -> str | None:
        return self._merge_base(self.resolve(a).commit_id, self.resolve(b).commit_id)

    def _merge_base(self, a: str, b: str) -> str | None:
        """Highest-generation common ancestor; walks only commits above it."""
        if a == b:
            return a
        flags: dict[str, int] = {a: 1, b: 2}
        heap = [(-self._generation(a), a), (-self._generation(b), b)]
        heapq.heapify(heap)
        queued = {a, b}
        while heap:
            _, commit_id = heapq.heappop(heap)
            flag = flags[commit_id]
            if flag == 3:
                return commit_id
            for parent in self._commit_and_generation(commit_id)[0].parents:
                flags[parent] = flags.get(parent, 0) | flag
                if parent not in queued:
                    queued.add(parent)
                    heapq.heappush(heap, (-self._generation(parent), parent))
        return None

    # ---- merge, cherry-pick, revert, rollback ---------------------------------------------
    def merge(
        self,
        source: str,
        target: str = DEFAULT_BRANCH,
        *,
        dry_run: bool = False,
        fast_forward: bool = True,
        default_behavior: MergeBehavior = MergeBehavior.NORMAL,
        behaviors: Mapping[KeyLike, MergeBehavior] | None = None,
        message: str | None = None,
        author: str | None = None,
        properties: Mapping[str, str] | None = None,
        expected_target_head: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> MergeResult:
        merge_options = _check_merge_options(options)
        default = MergeBehavior.parse(default_behavior)
        per_key = {Key.of(k): MergeBehavior.parse(v) for k, v in (behaviors or {}).items()}
        props = _check_properties(properties)
        check_commit(self.limits, message=message, author=author, properties=props)
        target_ref = self._writable_branch(target)
        for _ in range(MAX_CAS_ATTEMPTS):
            source_head = self.resolve(source).commit_id
            self._require_retained(None, [source_head])
            target_head = self.get_ref(target_ref.name).head
            if expected_target_head and self._expand_hash(expected_target_head) != target_head:
                raise ReferenceConflict(f"branch {target_ref.name!r} is not at the expected "
                                        f"head {expected_target_head}")
            base = self._merge_base(source_head, target_head)
            base_root = self._root_of(base) if base else None

            def result(details: Sequence[KeyMergeDetail], new_head: str | None, ff: bool,
                       base: str | None = base, target_head: str = target_head
                       ) -> MergeResult:
                return MergeResult(source, target_ref.name, base, target_head, new_head, ff,
                                   dry_run, tuple(details))

            if base == source_head:  # nothing new on the source
                return result([], None if dry_run else target_head, False)
            changes = self._changes(base_root, self._root_of(source_head))
            target_root = self._root_of(target_head)
            context = MergeContext(source, source_head, target_ref.name, target_head,
                                   merge_options)
            if base == target_head and fast_forward and not any(
                    per_key.get(k, default) is MergeBehavior.DROP for k in changes):
                details = [KeyMergeDetail(k, MergeAction.FAST_FORWARDED,
                                          per_key.get(k, default)) for k in sorted(changes)]
                if dry_run:
                    return result(details, None, True)
                try:
                    with self._write() as conn:
                        self._require_retained(conn, [source_head])
                        self._cas(conn, target_ref.name, target_head, source_head,
                                  f"fast-forward from {source}"[:32])
                except ReferenceConflict:
                    continue
                return result(details, source_head, True)
            target_values = self._values(target_root, changes)
            plan = plan_merge(changes, target_values,
                              default_behavior=default, behaviors=per_key, context=context)
            if plan.conflicts:
                conflicted = result(plan.details, None, False)
                if dry_run:
                    return conflicted
                raise ConflictError(
                    f"merging {source!r} into {target_ref.name!r} has "
                    f"{len(plan.conflicts)} conflict(s): "
                    + "; ".join(c.message for c in plan.conflicts), result=conflicted)
            if dry_run:
                return result(plan.details, None, False)
            msg = message or f"Merge {source} into {target_ref.name}"
            merge_props = {"lakeversion.merge.source": source,
                           "lakeversion.merge.source-commit": source_head, **props}
            merge_input = _MergeInput(base_root, target_root, self._root_of(source_head),
                                      changes, target_values)
            try:
                commit = self._commit_merge(target_ref.name, target_head, target_root,
                                            (target_head, source_head), plan, merge_input,
                                            author or DEFAULT_AUTHOR, msg, merge_props)
            except ReferenceConflict:
                for content_plan in plan.content_plans.values():
                    content_plan.discard()  # files of a plan that will never be committed
                continue  # the target moved while planning: plan again on its new state
            return result(plan.details, commit.id, False)
        raise ReferenceConflict(f"branch {target_ref.name!r} kept moving during the merge")

    def _commit_merge(self, branch: str, head: str, head_root: str | None,
                      parents: tuple[str, ...], plan: MergePlan, merge_input: _MergeInput,
                      author: str, message: str, properties: Mapping[str, str]) -> Commit:
        changes = plan.materialize()
        with self._write() as conn:
            self._require_retained(conn, parents[1:])
            return self._write_commit(conn, branch, head, parents, head_root, changes,
                                      author, message, properties, "merge",
                                      self._cheaper_side(merge_input, changes))

    def _cheaper_side(self, merge_input: _MergeInput, changes: Mapping[Key, Content | None]
                      ) -> tuple[str | None, dict[Key, Content | None]] | None:
        """Build the merged tree from the source's tree when that needs fewer edits.

        The merged tree is base + target's changes + `changes`. A branch that rewrote many
        tables merged into a target that moved a little costs a few edits on the source's
        tree instead of many on the target's: the cost follows the smaller side.
        """
        source = merge_input.source_changes
        if len(changes) <= SMALL_MERGE:
            return None
        target = self._changes(merge_input.base_root, merge_input.target_root)
        on_source: dict[Key, Content | None] = {
            k: after for k, (_, after) in target.items() if k not in source}
        for key, (_, source_value) in source.items():
            final = changes[key] if key in changes else merge_input.target_values.get(key)
            if final != source_value:
                on_source[key] = final
        if len(on_source) >= len(changes):
            return None
        return merge_input.source_root, on_source

    def _apply_commit_diff(self, kind: str, commit_ids: Sequence[str], onto: str,
                           dry_run: bool, author: str | None,
                           expected_head: str | None) -> MergeResult:
        """Cherry-pick (base = parent, change = commit) or revert (the reverse)."""
        ref = self._writable_branch(onto)
        picked = [self._commit_and_generation(self._expand_hash(c))[0] for c in commit_ids]
        if not picked:
            raise InvalidInput(f"nothing to {kind}: give at least one commit")
        for commit in picked:
            if not commit.parents:
                raise InvalidInput(f"cannot {kind} the initial commit {commit.id[:12]}")
        # cherry-pick writes the picked states; revert writes the states before them
        needed = [c.id for c in picked] if kind == "cherry-pick" \
            else [c.parents[0] for c in picked]
        self._require_retained(None, needed)
        for _ in range(MAX_CAS_ATTEMPTS):
            head = self.get_ref(ref.name).head
            if expected_head and self._expand_hash(expected_head) != head:
                raise ReferenceConflict(f"branch {ref.name!r} is not at {expected_head}")
            head_root = self._root_of(head)
            details: list[KeyMergeDetail] = []
            staged: dict[Key, Content | None] = {}  # changes of the picks applied so far
            for commit in picked:
                parent_root = self._root_of(commit.parents[0])
                before, after = (parent_root, commit.root) if kind == "cherry-pick" \
                    else (commit.root, parent_root)
                changes = self._changes(before, after)
                at_head = self._values(head_root, [k for k in changes if k not in staged])
                current = {k: v for k in changes
                           if (v := staged[k] if k in staged else at_head.get(k)) is not None}
                plan = plan_merge(changes, current, content_merging=False)
                details.extend(plan.details)
                staged.update(plan.puts)
            label = ", ".join(c.id[:12] for c in picked)
            conflicted = MergeResult(label, ref.name, None, head, None, False, dry_run,
                                     tuple(details))
            if conflicted.conflicts:
                if dry_run:
                    return conflicted
                raise ConflictError(f"{kind} of {label} onto {ref.name!r} conflicts: "
                                    + "; ".join(c.message for c in conflicted.conflicts),
                                    result=conflicted)
            if dry_run:
                return conflicted
            first = picked[0]
            message = (f"Revert \"{first.message}\"" if kind == "revert"
                       else first.message) if len(picked) == 1 else f"{kind} {label}"
            props = {f"lakeversion.{kind}": ",".join(c.id for c in picked)}
            try:
                with self._write() as conn:
                    self._require_retained(conn, needed)
                    commit = self._write_commit(conn, ref.name, head, (head,), head_root,
                                                staged, author or DEFAULT_AUTHOR, message,
                                                props, kind)
            except ReferenceConflict:
                continue
            return MergeResult(label, ref.name, None, head, commit.id, False, False,
                               tuple(details))
        raise ReferenceConflict(f"branch {ref.name!r} kept moving during the {kind}")

    def cherry_pick(self, commit_ids: Sequence[str], onto: str, *, dry_run: bool = False,
                    author: str | None = None,
                    expected_head: str | None = None) -> MergeResult:
        check_commit(self.limits, message=None, author=author, properties=None)
        return self._apply_commit_diff("cherry-pick", list(commit_ids), onto, dry_run, author,
                                       expected_head)

    def revert(self, commit_id: str, on: str, *, dry_run: bool = False,
               author: str | None = None, expected_head: str | None = None) -> MergeResult:
        check_commit(self.limits, message=None, author=author, properties=None)
        return self._apply_commit_diff("revert", [commit_id], on, dry_run, author,
                                       expected_head)

    def rollback_table(self, branch: str, key: KeyLike, to: str, *,
                       author: str | None = None, message: str | None = None,
                       expected_head: str | None = None) -> Commit:
        k = Key.of(key)
        ref = self._writable_branch(branch)
        to_commit = self.resolve(to).commit_id
        self._require_retained(None, [to_commit])
        target = self.get_contents(to_commit, [k]).get(k)
        current = self.get_contents(ref.name, [k]).get(k)
        if target is None and current is None:
            raise KeyNotFound(f"{k} exists neither on {branch!r} nor at {to!r}")
        op: Operation = Put(k, target) if target is not None else Delete(k)
        return self._commit_operations(
            ref.name, [op], message=message or f"Roll back {k} to {to}", author=author,
            expected_head=expected_head, from_commits=[to_commit],
            properties={"lakeversion.rollback.to": to,
                        "lakeversion.rollback.to-commit": to_commit})

    # ---- gc: its state, and the history it retains ------------------------------------
    def gc_state(self) -> GcState:
        with self._read() as conn:
            return gc_state.read(conn)

    def begin_gc(self, cutoff: datetime, retained_since: datetime) -> GcState:
        with self._write() as conn:
            return gc_state.begin(conn, cutoff, retained_since)

    def reflog(self, since: datetime) -> list[ReflogEntry]:
        with self._read() as conn:
            rows = conn.execute(sa.select(reflog_table.c.name, reflog_table.c.head,
                                          reflog_table.c.ts_us, reflog_table.c.operation)
                                .order_by(reflog_table.c.ts_us, reflog_table.c.seq)).all()
        since_us = _to_us(since)
        in_force: dict[str, ReflogEntry] = {}  # per ref: its last entry before `since`
        later: list[ReflogEntry] = []
        for name, head, ts_us, operation in rows:
            entry = ReflogEntry(name, head, _to_datetime(ts_us), operation)
            if ts_us < since_us:
                in_force[name] = entry
            else:
                later.append(entry)
        return sorted(in_force.values(), key=lambda e: e.timestamp) + later

    def table_states(self, page_token: str | None = None,
                     limit: int = TABLE_STATES_PAGE) -> TableStatesPage:
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInput("limit must be a positive integer")
        query = sa.select(contents_table.c.hash, contents_table.c.data) \
            .order_by(contents_table.c.hash).limit(limit)
        if page_token is not None:
            if not isinstance(page_token, str) or len(page_token) != FULL_HASH_LENGTH \
                    or not is_commit_hash(page_token):
                raise InvalidInput(f"page_token {str(page_token)[:64]!r} is not a page token "
                                   "from a previous answer (pass next_page_token back)")
            query = query.where(contents_table.c.hash > page_token)
        with self._read() as conn:
            rows = conn.execute(query).all()
        states = [c for c in (Content.from_dict(json.loads(data)) for _, data in rows)
                  if c.is_table]
        return TableStatesPage(states, str(rows[-1][0]) if len(rows) == limit else None)

    def retention_roots(self, since: datetime,
                        conn: Connection | None = None) -> tuple[dict[str, str], set[str]]:
        """(ref name -> head, reflog heads within the window): where gc's walk starts."""
        if conn is None:
            with self._read() as read_conn:
                return self.retention_roots(since, read_conn)
        heads = {str(name): str(head) for name, head in conn.execute(
            sa.select(refs_table.c.name, refs_table.c.head))}
        return heads, self.reflog_heads(since, set(heads), conn)

    def reflog_heads(self, since: datetime, names: set[str],
                     conn: Connection | None = None) -> set[str]:
        """Heads `ref#<time>` can resolve to within the window, for the existing refs
        `names` (`spark_lakeversion.store.retention.reflog_heads`)."""
        if conn is None:
            with self._read() as read_conn:
                return self.reflog_heads(since, names, read_conn)
        rows = conn.execute(sa.select(reflog_table.c.name, reflog_table.c.head,
                                      reflog_table.c.ts_us)
                            .order_by(reflog_table.c.ts_us, reflog_table.c.seq)).all()
        return reflog_heads(((r[0], r[1], r[2]) for r in rows), _to_us(since), names)

    def _heads_then_reflog(self, commit_id: str, since: datetime, conn: Connection | None
                           ) -> tuple[dict[str, str], set[str]]:
        """`retention_roots`, but without reading the reflog when `commit_id` is a head."""
        if conn is None:
            with self._read() as read_conn:
                return self._heads_then_reflog(commit_id, since, read_conn)
        heads = {str(name): str(head) for name, head in conn.execute(
            sa.select(refs_table.c.name, refs_table.c.head))}
        if commit_id in heads.values():
            return heads, set()
        return heads, self.reflog_heads(since, set(heads), conn)

    def _check_gc_epoch(self, conn: Connection, expected: int | None) -> None:
        if expected is None:
            return
        state = gc_state.hold(conn)
        if state.epoch != expected:
            raise GcEpochChanged(
                f"gc started a new run (epoch {state.epoch}, expected {expected}) while this "
                "commit was checked: its files were not checked against gc's new cutoff, so "
                "nothing was committed; retry the commit")

    def _require_retained(self, conn: Connection | None, commit_ids: Sequence[str]) -> None:
        """`HistoryCollected` unless gc's walk retains every commit of `commit_ids`.

        In a write transaction (`conn`), the gc state row is held, so no gc run can begin
        until the caller's ref move is committed (and then that run sees it)."""
        if not commit_ids:
            return
        if conn is None:
            with self._read() as read_conn:
                state = gc_state.read(read_conn)
        else:
            state = gc_state.hold(conn)
        if state.retained_since is None:
            return  # gc never ran for real: nothing was collected
        for commit_id in commit_ids:
            commit, generation = self._commit_and_generation(commit_id)
            if not state.may_have_collected(commit.timestamp):
                continue
            heads, reflog = self._heads_then_reflog(commit_id, state.retained_since, conn)
            if commit_id in heads.values() or commit_id in reflog:
                continue
            def below(candidate: str, floor: int = generation) -> bool:
                return self._generation(candidate) < floor  # cannot lead to the commit

            assert state.retained_since is not None
            if walk_retained(set(heads.values()) | reflog, state.retained_since,
                             lambda c: self._commit_and_generation(c)[0], {},
                             target=commit_id, skip=below):
                continue
            raise HistoryCollected(
                f"commit {commit_id[:12]} ({commit.timestamp.isoformat()}) is outside gc's "
                f"retained history (the commits a ref reaches back to "
                f"{state.retained_since.isoformat()}; gc last ran at "
                f"{state.started.isoformat() if state.started else '?'}), so its files may "
                "have been deleted: it cannot be restored, merged, cherry-picked or "
                "reverted; use a ref head or a more recent commit")


ISOLATION_LEVELS = ("serializable", "snapshot")


def _check_merge_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Options reach content mergers; the one users set, `isolation_level`, is checked here."""
    checked = dict(options or {})
    level = checked.get("isolation_level")
    if level is not None and level not in ISOLATION_LEVELS:
        raise InvalidInput(f"isolation_level must be one of {', '.join(ISOLATION_LEVELS)}, "
                           f"not {level!r}")
    return checked


def _key_text(key: Key) -> str:
    """Keys as JSON text in SQL columns: PostgreSQL text cannot hold the NUL separator."""
    return json.dumps(list(key.elements), separators=(",", ":"))


def _check_properties(properties: Mapping[str, str] | None) -> dict[str, str]:
    if properties is None:
        return {}
    if not isinstance(properties, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in properties.items()):
        raise InvalidInput("commit properties must map strings to strings")
    return dict(properties)
