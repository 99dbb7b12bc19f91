"""Writes on one Delta log: append, overwrite, delete, update, merge (upsert), rollback.

delta-rs writes where it can. It never retries onto a version someone else wrote (that is
the caller's conflict) and never cleans up expired log files (retained refs may pin them).
Row-level edits on a branch log whose live files include its parent's (absolute URIs
outside the log's root, which delta-rs refuses: delta-rs issue 1748) use our own rewrite:
each live file is read on its own, the edit is applied, the surviving rows are written as
a new file into the branch directory, and one commit removes the old files and adds the
new ones. Rollback is a new version whose file set equals the old state's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from spark_lakeversion.errors import ConflictError, InvalidInput
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.lib import deltalake

#: delta-rs's partition directory name for a null value
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
#: the column our rewrite computes a predicate into
HIT = "__lakeversion_hit"


@dataclass
class WriteOutcome:
    """What a write did: the new log version and the log files it created."""

    version: int
    created: list[str] = field(default_factory=list)
    data_files_written: int = 0


def _commit_properties(operation: str) -> dict[str, Any]:
    module = deltalake()
    return {"commit_properties": module.CommitProperties(
                max_commit_retries=0,
                custom_metadata={"lakeversion": operation}),
            "post_commithook_properties": module.PostCommitHookProperties(
                cleanup_expired_logs=False)}


def _delta_rs(state: DeltaState, operation: str, run: Any) -> WriteOutcome:
    """Run a delta-rs write on `state`; a version somebody else wrote first is a conflict."""
    module = deltalake()
    table = log.open_table(state.location, state.version)
    try:
        run(table, _commit_properties(operation))
    except module.exceptions.CommitFailedError as exc:
        raise ConflictError(f"the Delta log at {state.location} moved past version "
                            f"{state.version} while writing: read again and retry "
                            f"({exc})") from None
    except (module.exceptions.DeltaError, module.exceptions.SchemaMismatchError,
            ValueError, TypeError) as exc:
        raise InvalidInput(f"Delta {operation} failed: {exc}") from None
    version = table.version()  # the table object follows its own commit, not others'
    created = [os.path.join(log.local_dir(state.location), "_delta_log", log.log_name(v))
               for v in range(state.version + 1, version + 1)]
    return WriteOutcome(version, [*_data_files_added(state.location, created), *created])


def _data_files_added(location: str, log_files: Sequence[str]) -> list[str]:
    """The data files our own new log versions add: delta-rs writes each under a fresh
    name for this request, so a refused store commit removes them too (nothing stays)."""
    root = log.local_dir(location)
    added: list[str] = []
    for path in log_files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                action = json.loads(line).get("add")
                relative = action.get("path") if isinstance(action, dict) else None
                if isinstance(relative, str) and "://" not in relative and \
                        not relative.startswith("/"):
                    added.append(os.path.join(root, unquote(relative)))
    return added


def create(location: str, schema: Any, partition_by: Sequence[str] | None,
           configuration: Mapping[str, str] | None) -> Any:
    """Create a new Delta table at `location`; the new `DeltaTable`. Properties of our own
    (``lakeversion.*``, e.g. the row identity `rows.IDENTIFIER_PROPERTY`) are refused by
    delta-rs' create, so they are set by a second commit (version 1)."""
    module = deltalake()
    config = dict(configuration or {})
    ours = {k: v for k, v in config.items() if k.startswith("lakeversion.")}
    try:
        table = module.DeltaTable.create(
            location, schema, mode="error", partition_by=list(partition_by or []) or None,
            configuration={k: v for k, v in config.items() if k not in ours} or None,
            **_commit_properties("create"))
        if ours:
            table.alter.set_table_properties(ours, raise_if_not_exists=False)
            table = module.DeltaTable(location)
        return table
    except (module.exceptions.DeltaError, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot create a Delta table at {location}: {exc}") from None


def append(state: DeltaState, data: Any) -> WriteOutcome:
    module = deltalake()
    return _delta_rs(state, "append", lambda t, props: module.write_deltalake(
        t, data, mode="append", **props))


def overwrite(state: DeltaState, data: Any, predicate: str | None) -> WriteOutcome:
    module = deltalake()
    return _delta_rs(state, "overwrite", lambda t, props: module.write_deltalake(
        t, data, mode="overwrite", predicate=predicate, **props))


def delete(state: DeltaState, predicate: str) -> WriteOutcome:
    files = log.read_state(state.location, state.version)
    if files.inside_root():
        return _delta_rs(state, "delete", lambda t, props: t.delete(predicate, **props))
    return _Rewrite(state, files).delete(predicate)


def update(state: DeltaState, updates: Mapping[str, str], predicate: str | None) -> WriteOutcome:
    files = log.read_state(state.location, state.version)
    columns = {f["name"] for f in json.loads(files.metadata["schemaString"])["fields"]}
    unknown = sorted(set(updates) - columns)
    if unknown or not updates:
        raise InvalidInput(f"update names unknown columns: {', '.join(unknown)}" if unknown
                           else "update needs at least one column to set")
    if files.inside_root():
        return _delta_rs(state, "update", lambda t, props: t.update(
            updates=dict(updates), predicate=predicate, **props))
    return _Rewrite(state, files).update(updates, predicate)


def merge(state: DeltaState, source: Any, on: Sequence[str]) -> WriteOutcome:
    """Upsert: rows of `source` matching a target row on every `on` column replace it,
    the others are inserted."""
    if not on:
        raise InvalidInput("merge needs at least one key column in on=")
    files = log.read_state(state.location, state.version)
    if files.inside_root():
        predicate = " AND ".join(f't."{c}" = s."{c}"' for c in on)
        return _delta_rs(state, "merge", lambda t, props: t.merge(
            source, predicate, source_alias="s", target_alias="t", **props)
            .when_matched_update_all().when_not_matched_insert_all().execute())
    return _Rewrite(state, files).merge(source, on)


def rollback(state: DeltaState, to: DeltaState) -> WriteOutcome:
    """A new version of `state`'s log whose files, metadata and protocol equal `to`'s."""
    current = log.read_state(state.location, state.version)
    old = log.read_state(to.location, to.version)
    log.check_protocol(old.protocol, to.location)
    actions: list[dict[str, Any]] = []
    if old.protocol != current.protocol:
        actions.append({"protocol": old.protocol})
    if old.metadata != current.metadata:
        actions.append({"metaData": old.metadata})
    actions.extend(f.remove_action() for k, f in current.files.items() if k not in old.files)
    actions.extend(f.add_action(absolute_path=True, data_change=True)
                   for k, f in old.files.items() if k not in current.files)
    return _write(state, actions, log.OP_ROLLBACK,
                  {"toLocation": to.location, "toVersion": str(to.version)})


def _write(state: DeltaState, actions: list[dict[str, Any]], operation: str,
           parameters: Mapping[str, str]) -> WriteOutcome:
    version = state.version + 1
    path = log.write_commit(state.location, version, actions, operation, parameters)
    if path is None:
        raise ConflictError(f"the Delta log at {state.location} moved past version "
                            f"{state.version} while writing: read again and retry")
    return WriteOutcome(version, [path])


def write_rows(state: DeltaState, rows: Any) -> tuple[list[dict[str, Any]], list[str], int]:
    """Write `rows` (the table's columns, partition columns included) as new data files in
    `state`'s log directory, one per partition, as our rewrite does: returns their add
    actions, the local paths written and the bytes written. A row-level merge uses it."""
    rewrite = _Rewrite(state, log.read_state(state.location, state.version))
    rewrite._write_rows(rewrite._conform(rows))
    root = log.local_dir(state.location)
    paths = [os.path.join(root, *unquote(a["add"]["path"]).split("/")) for a in rewrite.added]
    return rewrite.added, paths, sum(int(a["add"]["size"]) for a in rewrite.added)


class _Rewrite:
    """Our own row-level edit over a branch log: one file at a time, SQL predicates
    evaluated by deltalake's query engine over a one-file temporary log."""

    def __init__(self, state: DeltaState, files: log.LogState) -> None:
        import pyarrow as pa

        self.pa = pa
        self.state = state
        self.files = files
        table = log.open_table(state.location, state.version)
        self.schema = pa.schema(table.schema().to_arrow())
        self.partition_columns = files.partition_columns
        self.removed: list[log.DataFile] = []
        self.added: list[dict[str, Any]] = []

    # ---- reading one file -------------------------------------------------------------
    def _query(self, data_file: log.DataFile, sql: str) -> Any:
        """Run `sql` over table `t`: the one file, with its partition values."""
        module = deltalake()
        scratch = tempfile.mkdtemp(prefix="lakeversion-delta-")
        try:
            location = "file://" + scratch
            actions = [{"protocol": self.files.protocol}, {"metaData": self.files.metadata},
                       data_file.add_action(absolute_path=True, data_change=False)]
            log.write_commit(location, 0, actions, "SCAN")
            table = module.DeltaTable(location)
            reader = module.QueryBuilder().register("t", table).execute(sql)
            return self.pa.table(reader)
        except module.exceptions.DeltaError as exc:
            raise InvalidInput(f"cannot evaluate the edit: {exc}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _rows(self, data_file: log.DataFile) -> Any:
        return self._conform(self._query(data_file, "SELECT * FROM t"))

    def _marked(self, data_file: log.DataFile, predicate: str) -> tuple[Any, Any]:
        """The file's rows and, per row, whether `predicate` holds (NULL counts as no).
        The predicate is computed as a column, never pushed down as a filter: a negated
        partition predicate pushed into the scan is not what a row-level edit needs."""
        import pyarrow.compute as pc

        table = self._query(data_file, f"SELECT *, coalesce(({predicate}), false) "
                                       f"AS {HIT} FROM t")
        hit = pc.fill_null(table.column(HIT), False) if table.num_rows \
            else self.pa.array([], self.pa.bool_())
        return self._conform(table.drop_columns([HIT])), hit

    def _conform(self, table: Any) -> Any:
        if table.num_rows == 0:
            return self.schema.empty_table()
        return table.select(self.schema.names).cast(self.schema)

    # ---- writing ----------------------------------------------------------------------
    def _write_rows(self, rows: Any) -> None:
        """Write `rows` as new files in the branch directory, one per partition."""
        import pyarrow.parquet as pq

        if rows.num_rows == 0:
            return
        groups: list[tuple[dict[str, str | None], Any]] = []
        if self.partition_columns:
            keys = rows.select(self.partition_columns).to_pylist()
            seen: dict[tuple[Any, ...], list[int]] = {}
            for i, key in enumerate(keys):
                seen.setdefault(tuple(key[c] for c in self.partition_columns), []).append(i)
            for values, indices in seen.items():
                part = rows.take(self.pa.array(indices))
                groups.append(({c: log.partition_text(v) for c, v in
                                zip(self.partition_columns, values)}, part))
        else:
            groups.append(({}, rows))
        root = log.local_dir(self.state.location)
        for partition, part in groups:
            data = part.drop_columns(self.partition_columns) if self.partition_columns \
                else part
            dirs = [quote(f"{c}={NULL_PARTITION if v is None else v}", safe="=")
                    for c, v in partition.items()]
            name = f"part-00000-{uuid.uuid4()}-lakeversion.snappy.parquet"
            relative = "/".join([*dirs, name])
            path = os.path.join(root, *dirs, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            pq.write_table(data, path, compression="snappy")
            self.added.append(log.DataFile(
                quote(relative, safe="/="), "", partition, os.path.getsize(path),
                int(time.time() * 1000), part.num_rows).add_action(
                    absolute_path=False, data_change=True))

    def _commit(self, operation: str, parameters: Mapping[str, str]) -> WriteOutcome:
        if not self.removed and not self.added:
            return WriteOutcome(self.state.version)
        actions = [f.remove_action() for f in self.removed] + self.added
        outcome = _write(self.state, actions, operation, parameters)
        outcome.data_files_written = len(self.added)
        return outcome

    # ---- the edits --------------------------------------------------------------------
    def delete(self, predicate: str) -> WriteOutcome:
        import pyarrow.compute as pc

        for data_file in self.files.files.values():
            table, hit = self._marked(data_file, predicate)
            if pc.any(hit).as_py():
                self.removed.append(data_file)
                self._write_rows(table.filter(pc.invert(hit)))
        return self._commit(log.OP_DELETE, {"predicate": predicate})

    def update(self, updates: Mapping[str, str], predicate: str | None) -> WriteOutcome:
        import pyarrow.compute as pc

        columns = ", ".join(f'({updates[c]}) AS "{c}"' for c in updates)
        for data_file in self.files.files.values():
            table, hit = self._marked(data_file, predicate or "true")
            if not pc.any(hit).as_py():
                continue
            changed = self._query(data_file, f"SELECT {columns}, "
                                             f"coalesce(({predicate or 'true'}), false) "
                                             f"AS {HIT} FROM t")
            for name in updates:
                new = changed.column(name).cast(self.schema.field(name).type)
                index = table.schema.get_field_index(name)
                table = table.set_column(index, self.schema.field(name),
                                         pc.if_else(hit, new, table.column(name)))
            self.removed.append(data_file)
            self._write_rows(table)
        return self._commit(log.OP_UPDATE, {"predicate": predicate or ""})

    def merge(self, source: Any, on: Sequence[str]) -> WriteOutcome:
        incoming = self._conform(self.pa.table(source))
        missing = [c for c in on if c not in self.schema.names]
        if missing:
            raise InvalidInput(f"merge keys are not columns: {', '.join(missing)}")
        keys = incoming.select(list(on))
        for data_file in self.files.files.values():
            rows = self._rows(data_file)
            kept = rows.join(keys, keys=list(on), join_type="left anti")
            if kept.num_rows != rows.num_rows:
                self.removed.append(data_file)
                self._write_rows(kept.select(self.schema.names))
        self._write_rows(incoming)
        return self._commit(log.OP_MERGE_ROWS, {"on": ",".join(on)})
