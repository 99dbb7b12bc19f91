"""Delta table handles: ``catalog.branch("dev").delta("db.events")`` for writes on a branch,
``catalog.ref(expr).delta(key)`` for reads at any ref expression.

Every write is one store commit carrying the head it read (as Iceberg commits are), so a
concurrent writer on the same table gets a conflict and its retry lands, and whatever the
version-control layer checks on a commit (protected branches, gates) applies. Writes to
tags, commits and time-travel expressions are refused (`ReadOnlyRef`). The Delta files
themselves are written here, on the client, under the catalog's warehouse; the store (or
the server, over HTTP) checks the state before it lands.

The handle knows nothing of the Python API's handles: it gets the store, the ref
expression, the author and where tables may live as values (`api.Reference.delta`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spark_lakeversion.errors import (
    AlreadyExists,
    CommitOutcomeUnknown,
    ConflictError,
    GcEpochChanged,
    InvalidInput,
    KeyNotFound,
    LakeVersionError,
    ReadOnlyRef,
    UnsafeOperation,
)
from spark_lakeversion.formats.delta import log, rebase, tables, writes
from spark_lakeversion.formats.delta.branching import WritableLog, writable
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.format import DeltaFormat
from spark_lakeversion.formats.delta.lib import deltalake
from spark_lakeversion.formats.delta.reader import VACUUM_REFUSED, catalog_table
from spark_lakeversion.locations import AllowedRoots
from spark_lakeversion.model import Commit, Content, Key, KeyLike, Put
from spark_lakeversion.tableformat.validate import check_not_owned, check_overlap
from spark_lakeversion.versioning.interface import VersionStore
from spark_lakeversion.versioning.names import expression_of
from spark_lakeversion.versioning.suggest import key_not_found

#: one write on a state; the mapping notes a rebase in the commitInfo (appends only)
Run = Callable[[DeltaState, Mapping[str, str]], writes.WriteOutcome]


class DeltaHandle:
    """One Delta table at one ref expression (lazy: nothing is read until asked).

    `warehouse` and `roots` are asked only when a table is created or registered (a local
    default warehouse is made on first use): where new tables go, and the warehouse and
    allowed locations a registered table may lie under."""

    def __init__(self, store: VersionStore, expression: str, key: KeyLike, *,
                 author: str | None = None, warehouse: Callable[[], str],
                 roots: Callable[[], AllowedRoots]) -> None:
        self._store = store
        self.expression = expression
        self.key = Key.of(key)
        self.author = author
        self._warehouse = warehouse
        self._roots = roots

    def __repr__(self) -> str:
        return f"DeltaHandle({self.expression!r}, {str(self.key)!r})"

    # ---- reads -------------------------------------------------------------------------
    def content(self) -> Content:
        found = self._store.get_content(self.expression, self.key)
        if found is None:
            raise key_not_found(self._store, self.expression, self.key,
                                f"{self.key} does not exist at {self.expression}")
        if found.type is not DELTA_TABLE:
            raise InvalidInput(f"{self.key} is not a Delta table at {self.expression}")
        return found

    def state(self) -> DeltaState:
        return DeltaState.of(self.content(), self.key)

    @property
    def version(self) -> int:
        return self.state().version

    @property
    def table(self) -> Any:
        """The underlying `deltalake.DeltaTable` at this ref's version, opened with the
        server's FileIO properties. Every reader of it reads a branch: `scan()`,
        `QueryBuilder`, and `to_pyarrow_table`/`to_pyarrow_dataset`/`to_pandas`, whose
        file system resolves the log's paths as our handles do (`reader.py`); its
        `vacuum` is refused."""
        state = self.state()
        return catalog_table(state.location, state.version, self._io)

    @property
    def io_properties(self) -> Mapping[str, str]:
        """The FileIO properties its files are opened with: the store's (the server's)."""
        return self._store.io_properties

    _io = io_properties

    def to_arrow(self, columns: Sequence[str] | None = None,
                 predicate: str | None = None) -> Any:
        """The table's rows at this ref, as a `pyarrow.Table`."""
        import pyarrow as pa

        module = deltalake()
        try:
            reader = self.table.scan(columns=list(columns) if columns else None,
                                     predicate=predicate)
            return pa.table(reader)
        except module.exceptions.DeltaError as exc:
            raise InvalidInput(f"cannot read {self.key}: {exc}") from None

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Delta's commit history of the log this ref reads up to its version, newest
        first (a branch log starts at its branch point): each version's commitInfo with its
        `version`, read through `log` (deltalake's `history()` lists the log with a request
        moto's S3 never answers)."""
        state = self.state()
        first = max(0, state.version - limit + 1) if limit is not None else 0
        return [{**log.commit_info(v, state.location, self._io), "version": v}
                for v in range(state.version, first - 1, -1)]

    def vacuum(self, *args: Any, **kwargs: Any) -> None:
        raise UnsafeOperation(VACUUM_REFUSED)

    # ---- writes ------------------------------------------------------------------------
    def _branch(self) -> tuple[str, str]:
        resolved = self._store.resolve(self.expression)
        if not resolved.writable or resolved.branch is None:
            raise ReadOnlyRef(f"{self.expression!r} is not a branch: Delta writes go to "
                              "branches only")
        return resolved.branch, resolved.commit_id

    def _commit(self, branch: str, head: str, content: Content, message: str,
                properties: Mapping[str, str], extra: Sequence[Put] = (),
                base: Content | None = None) -> Commit:
        """One store commit, fenced against gc like every commit that adds files
        (`gc.fence`: the files `content` adds over `base`, the state it replaces)."""
        from spark_lakeversion.gc.fence import fence

        epoch = fence(self._store, [(self.key, base, content)], self._store.io_properties)
        commit: Commit = self._store.commit(
            branch, [*extra, Put(self.key, content)], message=message, author=self.author,
            properties=dict(properties), expected_head=head, expected_gc_epoch=epoch)
        return commit

    def _write(self, operation: str, run: Run,
               message: str | None, *, blind_append: bool = False) -> Commit | None:
        """One write on the branch's table state. A blind append that loses the race is
        written again on the new state when `rebase.refusal` allows it (Delta's own
        optimistic retry); a write on a log version someone else wrote but has not
        committed yet waits a moment and tries again."""
        branch, head = self._branch()
        base = current = self._state_at(head)
        for attempt in range(1, rebase.MAX_ATTEMPTS + 1):
            try:
                return self._write_on(branch, head, current, operation, run, message,
                                      None if current is base else base)
            except ConflictError as exc:
                if not blind_append or isinstance(exc, GcEpochChanged) \
                        or attempt == rebase.MAX_ATTEMPTS or not rebase.enabled(base, self._io):
                    raise
                branch, head = self._branch()
                new = self._state_at(head)
                if new == current:  # another writer's log version awaits its store commit
                    time.sleep(min(0.5, 0.01 * 2 ** attempt) * random.random())
                    continue
                if rebase.refusal(base, new, self._io) is not None:
                    raise
                current = new
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _write_on(self, branch: str, head: str, current: DeltaState, operation: str,
                  run: Run, message: str | None,
                  rebased_from: DeltaState | None) -> Commit | None:
        target: WritableLog = writable(current, branch, self._io)
        note = {} if rebased_from is None else \
            {rebase.REBASED: f"{rebased_from.location}@{rebased_from.version}"}
        try:
            outcome = run(target.state, note)
        except BaseException:
            log.delete_created(target.created, self._io)
            raise
        created = [*target.created, *outcome.created]
        if outcome.version == target.state.version:
            log.delete_created(target.created, self._io)  # nothing changed: no new log
            return None
        new = target.state.at(outcome.version)
        properties = {"lakeversion.delta.operation": operation,
                      "lakeversion.delta.version": str(new.version)}
        if note:
            properties.update({"lakeversion.rebased": "true", **note})
        try:
            return self._commit(branch, head, new.content(),
                                message or f"Delta {operation} on {self.key} "
                                f"(version {new.version})", properties,
                                base=current.content())
        except LakeVersionError as exc:
            if not isinstance(exc, CommitOutcomeUnknown):  # refused: nothing landed
                log.delete_created(reversed(created), self._io)
            raise

    def _state_at(self, commit_id: str) -> DeltaState:
        found = self._store.get_content(commit_id, self.key)
        if found is None:
            raise KeyNotFound(f"{self.key} does not exist on {self.expression}")
        return DeltaState.of(found, self.key)

    def append(self, data: Any, *, message: str | None = None) -> Commit | None:
        """A blind append: when another write lands first it is written again on the new
        state unless that write changed the table's metadata or protocol (`rebase`)."""
        rows = data.read_all() if hasattr(data, "read_all") else data  # may be written twice
        return self._write("append", lambda s, note: writes.append(
            s, rows, self._io, note), message,
            blind_append=True)

    def overwrite(self, data: Any, predicate: str | None = None, *,
                  message: str | None = None) -> Commit | None:
        return self._write("overwrite",
                           lambda s, _: writes.overwrite(s, data, predicate, self._io), message)

    def delete(self, predicate: str, *, message: str | None = None) -> Commit | None:
        return self._write("delete", lambda s, _: writes.delete(s, predicate, self._io), message)

    def update(self, updates: Mapping[str, str], predicate: str | None = None, *,
               message: str | None = None) -> Commit | None:
        """`updates` maps columns to SQL expressions, as delta-rs takes them."""
        return self._write("update", lambda s, _: writes.update(s, updates, predicate, self._io),
                           message)

    def merge(self, source: Any, on: str | Sequence[str], *,
              message: str | None = None) -> Commit | None:
        """Upsert `source`: rows matching on the `on` columns replace the table's."""
        keys = [on] if isinstance(on, str) else list(on)
        return self._write("merge", lambda s, _: writes.merge(s, source, keys, self._io), message)

    def rollback(self, to: Any, *, message: str | None = None) -> Commit:
        """A new version on this branch whose files equal the table's at `to` (any ref
        expression or handle); history is never rewritten (`DeltaFormat.restore`)."""
        branch, head = self._branch()
        commit: Commit = self._store.rollback_table(
            branch, self.key, expression_of(to), author=self.author,
            message=message, expected_head=head)
        return commit

    def create(self, schema: Any, partition_by: Sequence[str] | str | None = None, *,
               configuration: Mapping[str, str] | None = None,
               message: str | None = None) -> Commit:
        """A new, empty Delta table under the catalog's warehouse. `schema`: a pyarrow
        schema, a `deltalake.Schema` or Delta's schema JSON."""
        branch, head = self._branch()
        self._check_absent(head)
        partitions = [partition_by] if isinstance(partition_by, str) else partition_by
        warehouse = self._roots().check(self._warehouse(), "warehouse")
        content, cleanup = tables.new_table(warehouse, self.key, schema, partitions,
                                            configuration, branch, self._io)
        try:
            return self._commit(branch, head, content,
                                message or f"Create Delta table {self.key}",
                                {"lakeversion.delta.operation": "create"},
                                self._namespaces(head))
        except LakeVersionError as exc:
            if not isinstance(exc, CommitOutcomeUnknown):
                cleanup()  # the commit did not land: the new directory is nobody's
            raise

    def register(self, location: str, *, message: str | None = None) -> Commit:
        """Bring an existing Delta table (under the catalog's allowed roots) into the
        catalog at its latest version."""
        branch, head = self._branch()
        self._check_absent(head)
        content = tables.existing_table(self.key, location, self._roots(), self._io)
        check_overlap(self._store, self.key, content)
        check_not_owned(self._store, f"cannot register {self.key}",
                        DeltaFormat().claimed_locations(content, self._store.io_properties))
        return self._commit(branch, head, content,
                            message or f"Register Delta table {self.key}",
                            {"lakeversion.delta.operation": "register"},
                            self._namespaces(head))

    def _check_absent(self, head: str) -> None:
        if self._store.get_content(head, self.key) is not None:
            raise AlreadyExists(f"{self.key} exists already on {self.expression}")

    def _namespaces(self, head: str) -> list[Put]:
        levels = tables.namespace_keys(self.key)
        return tables.missing_namespaces(self.key, self._store.get_contents(head, levels))


__all__ = ["VACUUM_REFUSED", "DeltaHandle"]
