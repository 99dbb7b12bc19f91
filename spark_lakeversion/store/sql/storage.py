"""`SqlStorage`: the storage interface (`spark_lakeversion.store.spi`) on SQLAlchemy, for
SQLite (embedded default, or `:memory:`) and PostgreSQL. Tables: `schema`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from spark_lakeversion.errors import AlreadyExists, InvalidInput, ReferenceConflict
from spark_lakeversion.model import (
    AuditRecord,
    CheckRun,
    CheckSpec,
    Commit,
    Content,
    GcState,
    Key,
    MergeRequest,
    MrStatus,
    Ref,
    ReflogEntry,
    RefType,
)
from spark_lakeversion.store.objects import from_us, root_commit, to_us
from spark_lakeversion.store.spi import Storage, StorageReader, StorageWriter
from spark_lakeversion.store.sql import (
    audit,
    gates,
    gc_state,
    location_index,
    reviews,
    sessions,
)
from spark_lakeversion.store.sql.engine import Database
from spark_lakeversion.store.sql.schema import (
    INSERT_COMMIT,
    INSERT_COMMIT_KEYS,
    INSERT_REFLOG,
    MOVE_BRANCH,
    SCHEMA_VERSION,
    SELECT_REF,
    commit_keys_table,
    commits_table,
    contents_table,
    key_text,
    locations_table,
    meta_table,
    metadata,
    nodes_table,
    reflog_table,
    refs_table,
)

DEFAULT_BRANCH = "main"


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def _commit_row(commit: Commit, generation: int) -> dict[str, Any]:
    return {
        "id": commit.id, "parents": json.dumps(list(commit.parents)), "root": commit.root,
        "author": commit.author, "message": commit.message,
        "ts_us": to_us(commit.timestamp), "generation": generation,
        "properties": json.dumps(commit.properties, sort_keys=True),
    }


class _Reader(StorageReader):
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def heads(self) -> dict[str, str]:
        return {str(name): str(head) for name, head in self.conn.execute(
            sa.select(refs_table.c.name, refs_table.c.head))}

    def reflog_rows(self) -> list[tuple[str, str | None, int]]:
        rows = self.conn.execute(sa.select(reflog_table.c.name, reflog_table.c.head,
                                           reflog_table.c.ts_us)
                                 .order_by(reflog_table.c.ts_us, reflog_table.c.seq)).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def gc_state(self) -> GcState:
        return gc_state.read(self.conn)

    def protected_branches(self) -> set[str]:
        return gates.protected(self.conn)

    def held_head(self, name: str, commit_id: str) -> bool:
        log = reflog_table.c
        deleted = self.conn.execute(sa.select(sa.func.max(log.seq)).where(
            log.name == name, log.head.is_(None))).scalar()
        return self.conn.execute(sa.select(log.seq).where(
            log.name == name, log.head == commit_id, log.seq > (deleted or 0))
            .limit(1)).first() is not None

    def branch_checks(self, branch: str | None) -> list[CheckSpec]:
        return gates.checks(self.conn, branch)

    def required_approvals(self) -> dict[str, int]:
        return reviews.required_approvals(self.conn)

    def merge_request(self, number: int) -> MergeRequest | None:
        return reviews.get(self.conn, number)

    def merge_requests(self, status: MrStatus | None, before: int | None,
                       limit: int) -> list[MergeRequest]:
        return reviews.page(self.conn, status, before, limit)


class _Writer(_Reader, StorageWriter):
    def __init__(self, conn: Connection, db: Database) -> None:
        super().__init__(conn)
        self.db = db

    def hold_gc_state(self) -> GcState:
        return gc_state.hold(self.conn)

    def put_objects(self, contents: Mapping[str, str], nodes: Mapping[str, bytes],
                    indexed: Iterable[Content | None]) -> None:
        self.db.insert_ignore(contents_table, [{"hash": h, "data": d}
                                               for h, d in contents.items()], self.conn)
        index_rows = location_index.rows(indexed)
        location_index.claim(self.conn, locations_table, index_rows,
                             self.db.dialect == "postgresql")
        self.db.insert_ignore(locations_table, index_rows, self.conn)
        self.db.insert_ignore(nodes_table, [{"hash": h, "data": d}
                                            for h, d in nodes.items()], self.conn)

    def put_commit(self, commit: Commit, generation: int, changed: Sequence[Key]) -> None:
        self.conn.execute(INSERT_COMMIT, _commit_row(commit, generation))
        if changed:
            self.conn.execute(INSERT_COMMIT_KEYS, [{"commit_id": commit.id, "key": key_text(k)}
                                                   for k in changed])

    def _reflog(self, name: str, head: str | None, operation: str,
                ts_us: int | None = None) -> None:
        self.conn.execute(INSERT_REFLOG, {"name": name, "head": head,
                                          "ts_us": ts_us or _now_us(), "operation": operation})

    def create_ref(self, name: str, type: RefType, head: str, operation: str) -> None:
        # insert-if-absent: one statement on the hot path (branch creation); the ref
        # already there is read only to name its type in the refusal
        if not self.db.insert_if_absent(refs_table, {"name": name, "type": type.value,
                                                     "head": head}, self.conn):
            existing = self.conn.execute(SELECT_REF, {"ref_name": name}).first()
            what = "a ref" if existing is None else f"a {RefType(existing[1]).value.lower()}"
            raise AlreadyExists(f"{what} named {name!r} already exists")
        self._reflog(name, head, operation)

    def delete_ref(self, name: str, expected_head: str) -> bool:
        deleted = self.conn.execute(refs_table.delete().where(
            refs_table.c.name == name, refs_table.c.head == expected_head)).rowcount
        if deleted:
            self._reflog(name, None, "delete")
        return bool(deleted)

    def move_branch(self, branch: str, expected_head: str, new_head: str, operation: str,
                    ts_us: int | None = None) -> None:
        moved = self.conn.execute(MOVE_BRANCH, {"ref_name": branch,
                                                "expected_head": expected_head,
                                                "new_head": new_head}).rowcount
        if not moved:
            raise ReferenceConflict(
                f"branch {branch!r} moved: it is no longer at {expected_head}")
        self._reflog(branch, new_head, operation, ts_us)

    def set_protected(self, branch: str, protected: bool) -> bool:
        changed = gates.set_protected(self.conn, branch, protected)
        if not protected:  # approvals are a rule of protected branches
            reviews.set_required_approvals(self.conn, branch, 0)
        return changed

    def set_required_approvals(self, branch: str, required: int) -> None:
        reviews.set_required_approvals(self.conn, branch, required)

    def add_merge_request(self, source: str, target: str, title: str, description: str,
                          author: str, now: datetime) -> int:
        return reviews.add(self.conn, source, target, title, description, author, now)

    def approve_merge_request(self, number: int, principal: str, source_head: str,
                              now: datetime) -> None:
        reviews.approve(self.conn, number, principal, source_head, now)

    def set_merge_request_status(self, number: int, expected: MrStatus, status: MrStatus,
                                 now: datetime, merged_commit: str | None = None,
                                 merged_source: str | None = None) -> bool:
        return reviews.set_status(self.conn, number, expected, status, now, merged_commit,
                                  merged_source)


class SqlStorage(Storage):
    def __init__(self, url: str) -> None:
        self.url = url
        self.db = Database(url)
        self._initialize()

    # ---- schema ---------------------------------------------------------------------------
    def _initialize(self) -> None:
        """Create the schema and `main` once; safe when several processes open at once."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with self.db.write() as conn:
                    metadata.create_all(conn, checkfirst=True)
                    gc_state.create(conn)
                    audit.create(conn)
                    gates.create(conn)
                    reviews.create(conn)
                    sessions.create(conn)
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
        root = root_commit()
        with self.db.write() as conn:
            if conn.execute(sa.select(commits_table.c.id).where(
                    commits_table.c.id == root.id)).first() is None:
                conn.execute(commits_table.insert().values(_commit_row(root, 0)))
                conn.execute(meta_table.insert().values(key="schema_version",
                                                        value=SCHEMA_VERSION))
            if conn.execute(sa.select(refs_table.c.name).where(
                    refs_table.c.name == DEFAULT_BRANCH)).first() is None and \
                    conn.execute(sa.select(meta_table.c.key).where(
                        meta_table.c.key == "initialized")).first() is None:
                conn.execute(refs_table.insert().values(
                    name=DEFAULT_BRANCH, type=RefType.BRANCH.value, head=root.id))
                conn.execute(meta_table.insert().values(key="initialized", value="1"))
                _Writer(conn, self.db)._reflog(DEFAULT_BRANCH, root.id, "init")
        self._backfill_locations()

    def _backfill_locations(self) -> None:
        """Index the locations of contents written before the index existed (once)."""
        marked = sa.select(meta_table.c.key).where(
            meta_table.c.key == location_index.BACKFILLED)
        with self.db.read() as conn:
            if conn.execute(marked).first() is not None:
                return
        with self.db.write() as conn:
            if conn.execute(marked).first() is not None:
                return
            result = conn.execute(sa.select(contents_table.c.data)).scalars()
            while True:
                batch = result.fetchmany(1000)
                if not batch:
                    break
                self.db.insert_ignore(locations_table, location_index.backfill_rows(batch),
                                      conn)
            self.db.insert_ignore(meta_table, [{"key": location_index.BACKFILLED,
                                                "value": "1"}], conn)

    # ---- transactions -------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[StorageReader]:
        with self.db.read() as conn:
            yield _Reader(conn)

    @contextmanager
    def writing(self) -> Iterator[StorageWriter]:
        with self.db.write() as conn:
            yield _Writer(conn, self.db)

    def close(self) -> None:
        self.db.close()

    # ---- immutable objects ---------------------------------------------------------------
    def node(self, node_hash: str) -> bytes | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(nodes_table.c.data).where(
                nodes_table.c.hash == node_hash)).first()
        return None if row is None else bytes(row[0])

    def contents(self, hashes: Sequence[str]) -> dict[str, Content]:
        found: dict[str, Content] = {}
        for start in range(0, len(hashes), 500):
            batch = hashes[start:start + 500]
            with self.db.read() as conn:
                rows = conn.execute(sa.select(contents_table.c.hash, contents_table.c.data)
                                    .where(contents_table.c.hash.in_(batch))).all()
            for h, data in rows:
                found[h] = Content.from_dict(json.loads(data))
        return found

    def commit(self, commit_id: str) -> tuple[Commit, int] | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(commits_table).where(
                commits_table.c.id == commit_id)).mappings().first()
        if row is None:
            return None
        commit = Commit(row["id"], tuple(json.loads(row["parents"])), row["author"],
                        row["message"], from_us(row["ts_us"]),
                        json.loads(row["properties"]), row["root"])
        return commit, row["generation"]

    def commits_with_prefix(self, prefix: str, limit: int) -> list[str]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(commits_table.c.id).where(
                commits_table.c.id.like(prefix + "%")).limit(limit)).all()
        return [str(r[0]) for r in rows]

    def commits_changing(self, key: Key) -> set[str]:
        with self.db.read() as conn:
            return {r[0] for r in conn.execute(sa.select(commit_keys_table.c.commit_id)
                                               .where(commit_keys_table.c.key == key_text(key)))}

    def table_states(self, after: str | None, limit: int) -> tuple[list[Content], str | None]:
        query = sa.select(contents_table.c.hash, contents_table.c.data) \
            .order_by(contents_table.c.hash).limit(limit)
        if after is not None:
            query = query.where(contents_table.c.hash > after)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        states = [c for c in (Content.from_dict(json.loads(data)) for _, data in rows)
                  if c.is_table]
        return states, str(rows[-1][0]) if len(rows) == limit else None

    # ---- refs ---------------------------------------------------------------------------
    def find_ref(self, name: str) -> Ref | None:
        with self.db.read() as conn:
            row = conn.execute(SELECT_REF, {"ref_name": name}).first()
        return Ref(row[0], RefType(row[1]), row[2]) if row else None

    def list_refs(self, type: RefType | None = None) -> list[Ref]:
        query = sa.select(refs_table).order_by(refs_table.c.name)
        if type is not None:
            query = query.where(refs_table.c.type == RefType(type).value)
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [Ref(r["name"], RefType(r["type"]), r["head"]) for r in rows]

    def reflog_head_at(self, name: str, when: datetime) -> tuple[bool, str | None]:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(reflog_table.c.head).where(
                    reflog_table.c.name == name, reflog_table.c.ts_us <= to_us(when))
                .order_by(reflog_table.c.ts_us.desc(), reflog_table.c.seq.desc())
                .limit(1)).first()
        return (False, None) if row is None else (True, row[0])

    def reflog_heads(self, name: str, limit: int) -> list[str | None]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(reflog_table.c.head).where(reflog_table.c.name == name)
                .order_by(reflog_table.c.ts_us.desc(), reflog_table.c.seq.desc())
                .limit(limit)).all()
        return [row[0] for row in rows]

    def reflog(self) -> list[ReflogEntry]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(reflog_table.c.name, reflog_table.c.head,
                                          reflog_table.c.ts_us, reflog_table.c.operation)
                                .order_by(reflog_table.c.ts_us, reflog_table.c.seq)).all()
        return [ReflogEntry(name, head, from_us(ts_us), operation)
                for name, head, ts_us, operation in rows]

    # ---- the small tables -----------------------------------------------------------------
    def location_owner(self, location: str, content_id: str | None
                       ) -> tuple[str, str] | None:
        parsed = location_index.canonical(location)
        if parsed is None:
            raise InvalidInput(f"{location!r} is not a location")
        with self.db.read() as conn:
            return location_index.owner(conn, locations_table, parsed, content_id)

    def begin_gc(self, cutoff: datetime, retained_since: datetime) -> GcState:
        with self.db.write() as conn:
            return gc_state.begin(conn, cutoff, retained_since)

    # ---- the audit trail ------------------------------------------------------------------
    def append_audit(self, record: AuditRecord) -> None:
        with self.db.write() as conn:
            audit.append(conn, record)

    def audit(self, since: datetime | None, principal: str | None,
              limit: int) -> list[AuditRecord]:
        with self.db.read() as conn:
            return audit.read(conn, since, principal, limit)
    # ---- merge gates ------------------------------------------------------------------------
    def checks(self, branch: str | None = None) -> list[CheckSpec]:
        with self.db.read() as conn:
            return gates.checks(conn, branch)

    def add_check(self, spec: CheckSpec) -> None:
        try:
            with self.db.write() as conn:
                gates.add_check(conn, spec)
        except IntegrityError as exc:  # added meanwhile by another writer
            raise gates.add_check_error(spec, exc) from None

    def remove_check(self, branch: str, name: str) -> bool:
        with self.db.write() as conn:
            return gates.remove_check(conn, branch, name)

    def record_check_runs(self, runs: Sequence[CheckRun]) -> None:
        with self.db.write() as conn:
            gates.record_runs(conn, runs)

    def check_runs(self, branch: str | None, limit: int) -> list[CheckRun]:
        with self.db.read() as conn:
            return gates.runs(conn, branch, limit)

    def previews_since(self, since: datetime) -> list[str]:
        with self.db.read() as conn:
            return gates.previews_since(conn, to_us(since))
