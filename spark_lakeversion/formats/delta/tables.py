"""New and registered Delta tables: the one place their first content value is made, for
the Python handle and `/api/v1/delta/*` alike. The caller commits it (with the namespaces
`missing_namespaces` lists) and calls the cleanup if that commit fails.

`create_table` and `register_table` are the server's (`/api/v1/delta/*`): the server
decides where files live (its warehouse; registered tables under its allowed roots), and
the commit passes gc's fence like every commit that adds files."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from spark_lakeversion.errors import (
    AlreadyExists,
    CommitOutcomeUnknown,
    InvalidInput,
    LakeVersionError,
    ReadOnlyRef,
    ReferenceConflict,
)
from spark_lakeversion.formats.delta import log, writes
from spark_lakeversion.formats.delta.branching import branch_dir
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.lib import deltalake
from spark_lakeversion.locations import AllowedRoots, Location, table_location
from spark_lakeversion.model import Commit, Content, ContentType, Key, Put
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH, VersionStore


def parse_schema(schema: Any) -> Any:
    """A pyarrow schema, a `deltalake.Schema`, or Delta's schema JSON (text or object)."""
    module = deltalake()
    if isinstance(schema, (str, dict)):
        text = schema if isinstance(schema, str) else json.dumps(schema)
        try:
            return module.Schema.from_json(text)
        except Exception as exc:  # noqa: BLE001 - deltalake raises several types here
            raise InvalidInput(f"not a Delta schema: {exc}") from None
    return schema


def new_table(warehouse: Location, key: Key, schema: Any, partition_by: Sequence[str] | None,
              configuration: Mapping[str, str] | None, branch: str,
              io: Mapping[str, str] | None = None) -> tuple[Content, Callable[[], None]]:
    """Create an empty table rooted at `<warehouse>/<namespace...>/<name>_<uuid>` owned
    by `branch` (files opened with the server's FileIO properties `io`); its content and
    the cleanup that removes what the create wrote again.

    On the default branch (main) the table's log is its root log, which plain readers of
    the root read. On any other branch it is a branch log of that branch
    (`branching.branch_dir`): the root log is never written, so plain readers see no table
    until a merge (or a cherry-pick, revert or rollback) gives main the table
    (`branching.adopt` writes the root log then)."""
    root = table_location(warehouse, key.namespace, key.name, uuid.uuid4().hex)
    where = root.uri if branch == DEFAULT_BRANCH else branch_dir(root.uri, branch)
    table = writes.create(where, parse_schema(schema), partition_by, configuration, io)
    log.check_protocol(log.protocol_action(table), where)
    local = root.local_path

    def cleanup() -> None:  # the directory is new and random: this request made it
        if local:
            shutil.rmtree(local, ignore_errors=True)
        else:  # an object store: the log files of the new, random prefix
            log.delete_created([u for _, u in log.log_files(where, io)], io)

    state = DeltaState(table.metadata().id, where, table.version(), root.uri, branch)
    return state.content(), cleanup


def existing_table(key: Key, location: str, roots: AllowedRoots,
                   io: Mapping[str, str] | None = None) -> Content:
    """An existing Delta table under the roots, at its latest version. Its log stays its
    own (no writer): the first write of any branch starts a branch log."""
    from spark_lakeversion.formats.delta.format import DeltaFormat

    where = roots.check(location, f"Delta table {key} location").uri
    table = log.open_table(where, io=io)
    state = DeltaState(table.metadata().id, where, table.version(), where, None)
    return DeltaFormat().validate(key, state.content(), roots, io or {})


def missing_namespaces(key: Key, present: Iterable[Key]) -> list[Put]:
    """Puts for the namespaces above `key` that do not exist yet."""
    have = set(present)
    return [Put(k, Content(ContentType.NAMESPACE, str(uuid.uuid4()), {"properties": {}}))
            for k in (Key(key.elements[:i]) for i in range(1, len(key.elements)))
            if k not in have]


def namespace_keys(key: Key) -> list[Key]:
    return [Key(key.elements[:i]) for i in range(1, len(key.elements))]


# ---- the server's create and register ------------------------------------------------------
def _prepare(store: VersionStore, table: str, branch: str, expected_head: str | None
             ) -> tuple[Key, str, str]:
    """The key, branch and head a create or register lands on: a branch, at
    `expected_head` if given, without anything at the key yet."""
    if not table:
        raise InvalidInput("table must be a non-empty key such as db.events")
    key = Key.of(table)
    resolved = store.resolve(branch)
    if not resolved.writable or resolved.branch is None:
        raise ReadOnlyRef(f"{branch!r} is not a branch: Delta tables are created "
                          "on branches only")
    head = resolved.commit_id
    if expected_head and store.resolve(expected_head).commit_id != head:
        raise ReferenceConflict(f"branch {resolved.branch!r} is not at {expected_head}")
    if store.get_content(head, key) is not None:
        raise AlreadyExists(f"{key} exists already on {resolved.branch}")
    return key, resolved.branch, head


def _land(store: VersionStore, key: Key, branch: str, head: str, content: Content,
          message: str, author: str | None, io: Mapping[str, str]) -> Commit:
    """The new table and its missing namespaces in one commit, fenced against gc."""
    from spark_lakeversion.gc.fence import fence
    from spark_lakeversion.tableformat.validate import check_overlap

    puts = missing_namespaces(key, store.get_contents(head, namespace_keys(key)))
    check_overlap(store, key, content)
    epoch = fence(store, [(key, None, content)], io)  # as every commit adding files
    return store.commit(branch, [*puts, Put(key, content)], message=message,
                        author=author, expected_head=head, expected_gc_epoch=epoch)


def create_table(store: VersionStore, warehouse: Location, table: str, schema: Any,
                 partition_by: Sequence[str], configuration: Mapping[str, str], *,
                 branch: str, expected_head: str | None, message: str | None,
                 author: str | None, io: Mapping[str, str]) -> Commit:
    """A new, empty table under the server's `warehouse`, committed on `branch`; its
    directory is removed again if the commit is refused."""
    key, branch, head = _prepare(store, table, branch, expected_head)
    content, cleanup = new_table(warehouse, key, schema, partition_by, configuration, branch,
                                 io)
    try:
        return _land(store, key, branch, head, content,
                     message or f"Create Delta table {key}", author, io)
    except LakeVersionError as exc:
        if not isinstance(exc, CommitOutcomeUnknown):
            cleanup()  # the commit did not land: the new directory is nobody's
        raise


def register_table(store: VersionStore, roots: AllowedRoots, table: str, location: str, *,
                   branch: str, expected_head: str | None, message: str | None,
                   author: str | None, io: Mapping[str, str]) -> Commit:
    """The existing table at `location` (under `roots`, owned by no other table),
    committed on `branch` at its latest version."""
    from spark_lakeversion.formats.delta.format import DeltaFormat
    from spark_lakeversion.tableformat.validate import check_not_owned

    key, branch, head = _prepare(store, table, branch, expected_head)
    content = existing_table(key, location, roots, io)
    check_not_owned(store, f"cannot register {key}",
                    DeltaFormat().claimed_locations(content, io))
    return _land(store, key, branch, head, content,
                 message or f"Register Delta table {key}", author, io)
