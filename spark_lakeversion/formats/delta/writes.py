"""Writes on one Delta log: append, overwrite, delete, update, merge (upsert), rollback.

delta-rs writes where it can. It never retries onto a version someone else wrote (that is
the caller's conflict) and never cleans up expired log files (retained refs may pin them).
Row-level edits on a branch log whose live files include its parent's (files outside the
log's root, which delta-rs refuses: delta-rs issue 1748) use our own rewrite: each live
file is read on its own, the edit is applied, the surviving rows are written as a new file
into the branch directory, and one commit removes the old files and adds the new ones.
Rollback is a new version whose file set equals the old state's. Every function takes the
server's FileIO properties `io`: local files and S3 alike.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.errors import ConflictError, InvalidInput, UnsupportedTableFeature
from spark_lakeversion.fileio import deltalake_storage_options
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.delta.lib import deltalake
from spark_lakeversion.formats.delta.statistics import table_stats
from spark_lakeversion.locations import normalize_path

#: delta-rs's partition directory name for a null value
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
#: the column our rewrite computes a predicate into
HIT = "__lakeversion_hit"
#: the directory (under a log on S3) of our rewrite's one-file scratch logs
SCRATCH_DIR = "_lakeversion_scratch"

IO = Mapping[str, str] | None


@dataclass
class WriteOutcome:
    """What a write did: the new log version and the files it created (URIs)."""

    version: int
    created: list[str] = field(default_factory=list)
    data_files_written: int = 0


def _commit_properties(operation: str, note: Mapping[str, str] | None = None
                       ) -> dict[str, Any]:
    """Commit properties of our delta-rs writes: never retried by delta-rs, no log
    cleanup; `note` goes into the commitInfo (a rebased append says so)."""
    module = deltalake()
    return {"commit_properties": module.CommitProperties(
                max_commit_retries=0,
                custom_metadata={"lakeversion": operation, **(note or {})}),
            "post_commithook_properties": module.PostCommitHookProperties(
                cleanup_expired_logs=False)}


def _delta_rs(state: DeltaState, operation: str, run: Any, io: IO,
              note: Mapping[str, str] | None = None) -> WriteOutcome:
    """Run a delta-rs write on `state`; a version somebody else wrote first is a conflict."""
    module = deltalake()
    table = log.open_table(state.location, state.version, io=io)
    try:
        run(table, _commit_properties(operation, note))
    except module.exceptions.CommitFailedError as exc:
        raise ConflictError(f"the Delta log at {state.location} moved past version "
                            f"{state.version} while writing: read again and retry "
                            f"({exc})") from None
    except (module.exceptions.DeltaError, module.exceptions.SchemaMismatchError,
            ValueError, TypeError) as exc:
        raise InvalidInput(f"Delta {operation} failed: {exc}") from None
    version = table.version()  # the table object follows its own commit, not others'
    versions = range(state.version + 1, version + 1)
    created = [log.commit_uri(state.location, v) for v in versions]
    return WriteOutcome(version, [*_data_files_added(state.location, versions, io), *created])


def _data_files_added(location: str, versions: range, io: IO) -> list[str]:
    """The data files our own new log versions add: delta-rs writes each under a fresh
    name in the log's directory for this request, so a refused store commit removes them
    too (nothing stays)."""
    inside = normalize_path(location).rstrip("/") + "/"
    added: list[str] = []
    for version in versions:
        for action in log.commit_actions(location, version, io):
            path = (action.get("add") or {}).get("path")
            if isinstance(path, str) and log.file_id(location, path).startswith(inside):
                added.append(log.file_id(location, path))
    return added


def create(location: str, schema: Any, partition_by: Sequence[str] | None,
           configuration: Mapping[str, str] | None, io: IO = None) -> Any:
    """Create a new Delta table at `location`; the new `DeltaTable`. Properties of our own
    (``lakeversion.*``, e.g. the row identity `rows.IDENTIFIER_PROPERTY`) are refused by
    delta-rs' create, so they are set by a second commit (version 1)."""
    module = deltalake()
    config = dict(configuration or {})
    ours = {k: v for k, v in config.items() if k.startswith("lakeversion.")}
    try:
        options = deltalake_storage_options(location, io)
        table = module.DeltaTable.create(
            location, schema, mode="error", storage_options=options,
            partition_by=list(partition_by or []) or None,
            configuration={k: v for k, v in config.items() if k not in ours} or None,
            **_commit_properties("create"))
        if ours:
            table.alter.set_table_properties(ours, raise_if_not_exists=False)
            table = module.DeltaTable(location, storage_options=options)
        return table
    except (module.exceptions.DeltaError, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot create a Delta table at {location}: {exc}") from None


def append(state: DeltaState, data: Any, io: IO = None,
           note: Mapping[str, str] | None = None) -> WriteOutcome:
    module = deltalake()
    return _delta_rs(state, "append", lambda t, props: module.write_deltalake(
        t, data, mode="append", **props), io, note)


def overwrite(state: DeltaState, data: Any, predicate: str | None, io: IO = None
              ) -> WriteOutcome:
    module = deltalake()
    return _delta_rs(state, "overwrite", lambda t, props: module.write_deltalake(
        t, data, mode="overwrite", predicate=predicate, **props), io)


def delete(state: DeltaState, predicate: str, io: IO = None) -> WriteOutcome:
    files = log.read_state(state.location, state.version, io=io)
    if files.inside_root():
        return _delta_rs(state, "delete", lambda t, props: t.delete(predicate, **props), io)
    rewrite = _Rewrite(state, files, io)
    return rewrite.run(lambda: rewrite.delete(predicate))


def update(state: DeltaState, updates: Mapping[str, str], predicate: str | None,
           io: IO = None) -> WriteOutcome:
    files = log.read_state(state.location, state.version, io=io)
    columns = {f["name"] for f in json.loads(files.metadata["schemaString"])["fields"]}
    unknown = sorted(set(updates) - columns)
    if unknown or not updates:
        raise InvalidInput(f"update names unknown columns: {', '.join(unknown)}" if unknown
                           else "update needs at least one column to set")
    if files.inside_root():
        return _delta_rs(state, "update", lambda t, props: t.update(
            updates=dict(updates), predicate=predicate, **props), io)
    rewrite = _Rewrite(state, files, io)
    return rewrite.run(lambda: rewrite.update(updates, predicate))


def merge(state: DeltaState, source: Any, on: Sequence[str], io: IO = None) -> WriteOutcome:
    """Upsert: rows of `source` matching a target row on every `on` column replace it,
    the others are inserted."""
    if not on:
        raise InvalidInput("merge needs at least one key column in on=")
    files = log.read_state(state.location, state.version, io=io)
    if files.inside_root():
        predicate = " AND ".join(f't."{c}" = s."{c}"' for c in on)
        return _delta_rs(state, "merge", lambda t, props: t.merge(
            source, predicate, source_alias="s", target_alias="t", **props)
            .when_matched_update_all().when_not_matched_insert_all().execute(), io)
    rewrite = _Rewrite(state, files, io)
    return rewrite.run(lambda: rewrite.merge(source, on))


def rollback(state: DeltaState, to: DeltaState, io: IO = None) -> WriteOutcome:
    """A new version of `state`'s log whose files, metadata and protocol equal `to`'s."""
    current = log.read_state(state.location, state.version, io=io)
    old = log.read_state(to.location, to.version, io=io)
    log.check_protocol(old.protocol, to.location)
    actions: list[dict[str, Any]] = []
    if old.protocol != current.protocol:
        actions.append({"protocol": old.protocol})
    if old.metadata != current.metadata:
        actions.append({"metaData": old.metadata})
    actions.extend(f.remove_action() for k, f in current.files.items() if k not in old.files)
    actions.extend(f.add_action(log_location=state.location, data_change=True)
                   for k, f in old.files.items() if k not in current.files)
    return _write(state, actions, log.OP_ROLLBACK,
                  {"toLocation": to.location, "toVersion": str(to.version)}, io)


def _write(state: DeltaState, actions: list[dict[str, Any]], operation: str,
           parameters: Mapping[str, str], io: IO) -> WriteOutcome:
    version = state.version + 1
    path = log.write_commit(state.location, version, actions, operation, parameters, io=io)
    if path is None:
        raise ConflictError(f"the Delta log at {state.location} moved past version "
                            f"{state.version} while writing: read again and retry")
    return WriteOutcome(version, [path])


def write_rows(state: DeltaState, rows: Any, io: IO = None
               ) -> tuple[list[dict[str, Any]], list[str], int]:
    """Write `rows` (the table's columns, partition columns included; one Arrow table, or
    an iterable of them streamed in, each written before the next is read) as new data
    files in `state`'s log directory, one per partition and table, as our rewrite does:
    returns their add actions, the URIs written and the bytes written. A row-level merge
    uses it. On failure the files written so far go again."""
    rewrite = _Rewrite(state, log.read_state(state.location, state.version, io=io), io)
    chunks = [rows] if hasattr(rows, "num_rows") and hasattr(rows, "column") else rows
    try:
        for chunk in chunks:
            rewrite._write_rows(rewrite._conform(chunk))
    except BaseException:
        log.delete_created(rewrite.written, io)
        raise
    return rewrite.added, list(rewrite.written), sum(int(a["add"]["size"])
                                                      for a in rewrite.added)


class _Rewrite:
    """Our own row-level edit over a branch log: one file at a time, SQL predicates
    evaluated by deltalake's query engine over a one-file temporary log (in a local
    temporary directory, or on S3 beside the log: DataFusion reads a table's files
    through that table's own object store)."""

    def __init__(self, state: DeltaState, files: log.LogState, io: IO) -> None:
        import pyarrow as pa

        self.pa = pa
        self.state = state
        self.files = files
        self.io = io
        table = log.open_table(state.location, state.version, io=io)
        self.schema = pa.schema(table.schema().to_arrow())
        self.partition_columns = files.partition_columns
        self.mapping = log.column_mapping(files.metadata)
        if self.mapping is not None:
            nested = [f.name for f in self.schema if pa.types.is_nested(f.type)]
            if nested:  # their fields have physical names of their own, unwritten here
                raise UnsupportedTableFeature(
                    f"the Delta table at {state.location} uses column mapping and has "
                    f"nested columns ({', '.join(nested)}): spark-lakeversion cannot "
                    "write its rows on a branch log")
        self.removed: list[log.DataFile] = []
        self.added: list[dict[str, Any]] = []
        self.written: list[str] = []  # the data files this edit wrote (URIs)

    # ---- reading one file -------------------------------------------------------------
    def _query(self, data_file: log.DataFile, sql: str) -> Any:
        """Run `sql` over table `t`: the one file, with its partition values."""
        module = deltalake()
        local = self.state.location.startswith("file:")
        scratch = tempfile.mkdtemp(prefix="lakeversion-delta-") if local else ""
        location = "file://" + scratch if local else \
            f"{self.state.location}/{SCRATCH_DIR}/{uuid.uuid4().hex}"
        created = None
        try:
            actions = [{"protocol": self.files.protocol}, {"metaData": self.files.metadata},
                       data_file.add_action(log_location=location, data_change=False)]
            created = log.write_commit(location, 0, actions, "SCAN", io=self.io)
            table = log.open_table(location, io=self.io)
            reader = module.QueryBuilder().register("t", table).execute(sql)
            return self.pa.table(reader)
        except module.exceptions.DeltaError as exc:
            raise InvalidInput(f"cannot evaluate the edit: {exc}") from None
        finally:
            if local:
                shutil.rmtree(scratch, ignore_errors=True)
            elif created:
                log.delete_created([created], self.io)

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
        for partition, part in groups:
            data = part.drop_columns(self.partition_columns) if self.partition_columns \
                else part
            logged = None
            if self.mapping is not None:  # as Delta readers look them up (`column_mapping`)
                logged = log.physical_keys(self.mapping, partition)
                data = self._physical(data)
            dirs = [f"{c}={NULL_PARTITION if v is None else v}"
                    for c, v in (logged or partition).items()]
            name = f"part-00000-{uuid.uuid4()}-lakeversion.snappy.parquet"
            uri = "/".join([self.state.location, *dirs, name])
            fs, path = storage.filesystem(uri, self.io)
            if uri.startswith("file:"):
                fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            self.written.append(uri)
            pq.write_table(data, path, compression="snappy", filesystem=fs)
            self.added.append(log.DataFile(
                "", uri, partition, storage.size(uri, self.io), int(time.time() * 1000),
                part.num_rows, stats=table_stats(data), partition_values=logged).add_action(
                    log_location=self.state.location, data_change=True))

    def _physical(self, data: Any) -> Any:
        """`data`'s columns under their physical names and field ids (Parquet's
        `field_id`), as a Delta writer writes a column-mapped table's files."""
        assert self.mapping is not None
        fields = []
        for f in data.schema:
            physical, fid = self.mapping.get(f.name, (f.name, None))
            meta = {b"PARQUET:field_id": str(fid).encode()} if fid is not None else None
            fields.append(self.pa.field(physical, f.type, f.nullable, metadata=meta))
        return self.pa.Table.from_arrays(data.columns, schema=self.pa.schema(fields))

    def _commit(self, operation: str, parameters: Mapping[str, str]) -> WriteOutcome:
        if not self.removed and not self.added:
            return WriteOutcome(self.state.version)
        actions = [f.remove_action() for f in self.removed] + self.added
        outcome = _write(self.state, actions, operation, parameters, self.io)
        outcome.created[:0] = self.written
        outcome.data_files_written = len(self.added)
        return outcome

    # ---- the edits --------------------------------------------------------------------
    def run(self, edit: Callable[[], WriteOutcome]) -> WriteOutcome:
        """Run one edit; if it fails, the data files it wrote go again (they are new)."""
        try:
            return edit()
        except BaseException:
            log.delete_created(self.written, self.io)
            raise

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
