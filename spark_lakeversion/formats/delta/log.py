"""Reading and writing Delta logs: a state's live files, protocol and metadata (read with
deltalake, which also reads checkpoints), and put-if-absent commits of our own actions.

Files are identified across logs by their normalized absolute path (`file_id`), because a
branch log names its parent's files by absolute URI while the parent names them relative
to its own root. Our own log writes are create-exclusive local files (``file://``): a
version someone else wrote first is a lost race, never overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import deltalake_storage_options
from spark_lakeversion.formats.delta.lib import deltalake
from spark_lakeversion.locations import normalize_path, parse_location

#: operation names of the commits we write ourselves (commitInfo.operation)
OP_BRANCH = "LAKEVERSION BRANCH"
OP_MERGE = "LAKEVERSION MERGE"
OP_ROLLBACK = "LAKEVERSION ROLLBACK"
OP_DELETE = "DELETE"
OP_UPDATE = "UPDATE"
OP_MERGE_ROWS = "MERGE"

#: reader/writer features delta-rs cannot honour on write: tables needing them are refused
UNSUPPORTED_FEATURES = frozenset({"deletionVectors"})


def absolute(location: str, path: str) -> str:
    """A log path as an absolute, percent-encoded URI (paths with a scheme are kept)."""
    if "://" in path or path.startswith("file:"):
        return path
    return location.rstrip("/") + "/" + quote(unquote(path), safe="/")


def file_id(location: str, path: str) -> str:
    """One spelling per data file, whatever log names it (and as gc lists it)."""
    return normalize_path(unquote(absolute(location, path)))


def add_path(location: str, file_location: str) -> str:
    """The `add` path the log at `location` writes for the data file at `file_location`
    (an absolute URI or path, any spelling): relative and percent-encoded when the file
    lies under the log's directory, else its absolute URI. The inverse of `file_id`."""
    fid = normalize_path(file_location)
    prefix = normalize_path(location).rstrip("/") + "/"
    if fid.startswith(prefix):
        return quote(fid[len(prefix):], safe="/")
    scheme, _, rest = fid.partition("://")
    return f"{scheme}://{quote(rest, safe='/')}"


def local_dir(location: str) -> str:
    """The local directory of a ``file://`` location; other schemes are refused for our
    own log writes."""
    parsed = parse_location(location, "Delta table location")
    path = parsed.local_path
    if path is None:
        raise InvalidInput(f"Delta branch logs are written on local file systems only for "
                           f"now, not at {location}")
    return path


def log_name(version: int) -> str:
    return f"{version:020d}.json"


@dataclass(frozen=True)
class DataFile:
    """One live file of a state: the path as its log writes it, and its add action."""

    path: str  # as written in the log (relative or an absolute URI)
    uri: str  # absolute URI
    partition: dict[str, str | None]
    size: int
    modification_time: int
    num_records: int | None

    def add_action(self, *, absolute_path: bool, data_change: bool) -> dict[str, Any]:
        stats = json.dumps({"numRecords": self.num_records}) \
            if self.num_records is not None else None
        return {"add": {"path": self.uri if absolute_path else self.path,
                        "partitionValues": self.partition, "size": self.size,
                        "modificationTime": self.modification_time,
                        "dataChange": data_change, "stats": stats}}

    def remove_action(self) -> dict[str, Any]:
        return {"remove": {"path": self.path, "dataChange": True,
                           "deletionTimestamp": int(time.time() * 1000),
                           "extendedFileMetadata": True, "partitionValues": self.partition,
                           "size": self.size}}


@dataclass
class LogState:
    """A Delta table at one version of one log."""

    location: str
    version: int
    protocol: dict[str, Any]
    metadata: dict[str, Any]
    files: dict[str, DataFile] = field(default_factory=dict)  # file_id -> file

    @property
    def partition_columns(self) -> list[str]:
        return list(self.metadata.get("partitionColumns") or [])

    @property
    def configuration(self) -> dict[str, str]:
        return dict(self.metadata.get("configuration") or {})

    def inside_root(self) -> bool:
        """Whether every live file lies under this log's own directory (delta-rs can then
        run row-level edits itself)."""
        prefix = normalize_path(self.location).rstrip("/") + "/"
        return all(fid.startswith(prefix) for fid in self.files)


def partition_text(value: Any) -> str | None:
    """A typed partition value as the string Delta's partitionValues hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, (dt.date, Decimal, int, float)):
        return str(value) if not isinstance(value, dt.date) else value.isoformat()
    return str(value)


def open_table(location: str, version: int | None = None, *,
               io: Mapping[str, str] | None = None) -> Any:
    """A `deltalake.DeltaTable` at `version` (the latest when None), opened with the
    storage options the server's FileIO properties `io` give (`spark_lakeversion.fileio`)."""
    module = deltalake()
    try:
        return module.DeltaTable(location, version=version,
                                 storage_options=deltalake_storage_options(location, io))
    except module.exceptions.TableNotFoundError:
        raise InvalidInput(f"no Delta table at {location}") from None
    except Exception as exc:  # noqa: BLE001 - deltalake raises OSError, DeltaError, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInput(f"cannot read the Delta table at {location} "
                           f"(version {version}): {first}") from None


def protocol_action(table: Any) -> dict[str, Any]:
    proto = table.protocol()
    action: dict[str, Any] = {"minReaderVersion": proto.min_reader_version,
                              "minWriterVersion": proto.min_writer_version}
    if proto.reader_features is not None:
        action["readerFeatures"] = list(proto.reader_features)
    if proto.writer_features is not None:
        action["writerFeatures"] = list(proto.writer_features)
    return action


def metadata_action(table: Any) -> dict[str, Any]:
    meta = table.metadata()
    return {"id": meta.id, "name": meta.name, "description": meta.description,
            "format": {"provider": "parquet", "options": {}},
            "schemaString": table.schema().to_json(),
            "partitionColumns": list(meta.partition_columns),
            "createdTime": meta.created_time,
            "configuration": dict(meta.configuration or {})}


def check_protocol(protocol: Mapping[str, Any], location: str) -> None:
    """Refuse tables whose protocol needs what delta-rs never writes (deletion vectors)."""
    features = set(protocol.get("readerFeatures") or ()) | set(
        protocol.get("writerFeatures") or ())
    bad = sorted(features & UNSUPPORTED_FEATURES)
    if bad:
        raise InvalidInput(f"the Delta table at {location} requires {', '.join(bad)}, which "
                           "spark-lakeversion cannot write on branches: disable them first")


def read_state(location: str, version: int) -> LogState:
    """Live files, protocol and metadata of `location` at `version`."""
    import pyarrow as pa

    table = open_table(location, version)
    state = LogState(location, version, protocol_action(table), metadata_action(table))
    actions = pa.table(table.get_add_actions(flatten=False))
    names = set(actions.column_names)
    for row in actions.to_pylist():
        partition = {k: partition_text(v) for k, v in (row.get("partition") or {}).items()} \
            if "partition" in names else {}
        path = str(row["path"])
        uri = absolute(location, path)
        state.files[normalize_path(unquote(uri))] = DataFile(
            path, uri, partition, int(row["size_bytes"]), int(row["modification_time"]),
            row.get("num_records"))
    return state


def latest_version(location: str) -> int | None:
    """The newest version in a local log (None: no log yet)."""
    log = os.path.join(local_dir(location), "_delta_log")
    try:
        names = os.listdir(log)
    except FileNotFoundError:
        return None
    versions = [int(n[:20]) for n in names if len(n) == 25 and n.endswith(".json")
                and n[:20].isdigit()]
    return max(versions, default=None)


def commit_info(version: int, location: str) -> dict[str, Any]:
    """The commitInfo of one version (empty when absent or unreadable)."""
    path = os.path.join(local_dir(location), "_delta_log", log_name(version))
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                action = json.loads(line)
                if "commitInfo" in action:
                    return dict(action["commitInfo"])
    except (OSError, ValueError):
        return {}
    return {}


def is_blind_append(info: Mapping[str, Any]) -> bool:
    """Whether a commit only appended without reading the table (Delta's isBlindAppend;
    delta-rs does not write the flag, so its WRITE in Append mode counts)."""
    if "isBlindAppend" in info:
        return bool(info["isBlindAppend"])
    if info.get("operation") == OP_BRANCH:
        return True
    params = info.get("operationParameters") or {}
    return info.get("operation") == "WRITE" and params.get("mode") == "Append"


def write_commit(location: str, version: int, actions: Iterable[Mapping[str, Any]],
                 operation: str, parameters: Mapping[str, Any] | None = None, *,
                 blind_append: bool = False) -> str | None:
    """Write `version` of the log at `location` if nobody has: the created file's path, or
    None when the version exists already (a lost race)."""
    log = os.path.join(local_dir(location), "_delta_log")
    os.makedirs(log, exist_ok=True)
    info = {"commitInfo": {"timestamp": int(time.time() * 1000), "operation": operation,
                           "operationParameters": dict(parameters or {}),
                           "isBlindAppend": blind_append,
                           "engineInfo": "spark-lakeversion"}}
    text = "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in [info, *actions])
    path = os.path.join(log, log_name(version))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def delete_created(paths: Iterable[str]) -> None:
    """Remove log files this request created (its commit lost the race in the store)."""
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
