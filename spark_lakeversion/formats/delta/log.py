"""Reading and writing Delta logs: a state's live files, protocol and metadata (read with
deltalake, which also reads checkpoints), and put-if-absent commits of our own actions.

Add paths: `absolute` is the ONE resolver of an add path (as any log writes it) to the
file's URI, and `add_path` the one place the form we write is chosen. A log names a file
under its own directory relatively (``p=a/part-0.parquet``), and a file elsewhere on the
same file system or bucket by a relative reference with ``..`` (a branch log at
``<root>/_branches/<b>`` names its parent's ``<root>/p=a/part-0.parquet`` as
``../../p=a/part-0.parquet``): RFC 3986 resolves it, and so do DuckDB's `delta_scan` (on
local files), deltalake's DataFusion reader and JVM Delta; README has the measurement of
every form with every reader. Logs written before named such files by absolute
``file:///`` URIs; `absolute` still reads them. A file on another bucket or file system
keeps its absolute URI.

Files are identified across logs by their normalized absolute path (`file_id`). Our own
log writes go through `storage` (local files and S3, with the server's FileIO
properties): a version someone else wrote first is a lost race, never overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import deltalake_storage_options
from spark_lakeversion.formats.delta import storage
from spark_lakeversion.formats.delta.lib import deltalake
from spark_lakeversion.formats.delta.statistics import stats_text
from spark_lakeversion.locations import normalize_path

#: operation names of the commits we write ourselves (commitInfo.operation)
OP_BRANCH = "LAKEVERSION BRANCH"
OP_MERGE = "LAKEVERSION MERGE"
OP_ROLLBACK = "LAKEVERSION ROLLBACK"
OP_DELETE = "DELETE"
OP_UPDATE = "UPDATE"
OP_MERGE_ROWS = "MERGE"

#: commitInfo.engineInfo of the commits we write ourselves
ENGINE = "spark-lakeversion"
#: reader/writer features delta-rs cannot honour on write: tables needing them are refused
UNSUPPORTED_FEATURES = frozenset({"deletionVectors"})
#: characters an add path we write keeps unencoded (delta-rs writes ``p=a/...`` so too)
PATH_SAFE = "/="


def _split(uri: str) -> tuple[str, str, str]:
    """(scheme, authority, unencoded path) of a normalized URI (`normalize_path`)."""
    scheme, _, rest = normalize_path(unquote(uri)).partition("://")
    authority, slash, path = rest.partition("/")
    return scheme, authority, slash + path


def absolute(location: str, path: str) -> str:
    """THE resolver: an add path as the log at `location` writes it, as an absolute,
    percent-encoded URI. A path with a scheme is kept; ``/x`` is on the log's own bucket
    or file system; a relative path is resolved against `location`, ``..`` included."""
    if "://" in path or path.startswith("file:"):
        return path
    scheme, authority, base = _split(location)
    joined = unquote(path) if path.startswith("/") else base.rstrip("/") + "/" + unquote(path)
    return f"{scheme}://{authority}{quote(posixpath.normpath(joined), safe='/')}"


def file_id(location: str, path: str) -> str:
    """One spelling per data file, whatever log names it (and as gc lists it)."""
    return normalize_path(unquote(absolute(location, path)))


def add_path(location: str, uri: str) -> str:
    """The path the log at `location` writes for the file at `uri`: relative (with ``..``
    when the file lies outside the log's directory) on the same bucket or file system,
    else the absolute URI."""
    scheme, authority, base = _split(location)
    file_scheme, file_authority, path = _split(uri)
    if (scheme, authority) != (file_scheme, file_authority):
        return uri
    return quote(posixpath.relpath(path, base.rstrip("/") or "/"), safe=PATH_SAFE)


def log_dir(location: str) -> str:
    return location.rstrip("/") + "/_delta_log"


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
    #: the add's statistics as Delta's JSON (`statistics.stats_text`), for a file we write
    stats: str | None = None
    #: or, for a file a log names, its statistics as deltalake parsed them (`null_count`,
    #: `min`, `max`), written again (encoded only then) when another log names the file,
    #: so readers of that log can still skip it
    parsed_stats: Mapping[str, Any] | None = None
    #: `partition` as the log writes it: keyed by physical names under column mapping
    #: (`column_mapping`); None: as `partition`, keyed by the columns' names
    partition_values: dict[str, str | None] | None = None

    @property
    def logged_partition(self) -> dict[str, str | None]:
        return self.partition if self.partition_values is None else self.partition_values

    def add_action(self, *, log_location: str, data_change: bool) -> dict[str, Any]:
        """The add action the log at `log_location` writes for this file (`add_path`)."""
        stats = self.stats if self.stats is not None else stats_text(
            self.num_records, *((self.parsed_stats or {}).get(k)
                                for k in ("null_count", "min", "max")))
        return {"add": {"path": add_path(log_location, self.uri),
                        "partitionValues": self.logged_partition, "size": self.size,
                        "modificationTime": self.modification_time,
                        "dataChange": data_change, "stats": stats}}

    def remove_action(self, *, log_location: str | None = None) -> dict[str, Any]:
        """The remove action for this file: in the path string of the log that added it
        (Delta matches them), or of the new branch log at `log_location` that listed it."""
        path = self.path if log_location is None else add_path(log_location, self.uri)
        return {"remove": {"path": path, "dataChange": True,
                           "deletionTimestamp": int(time.time() * 1000),
                           "extendedFileMetadata": True,
                           "partitionValues": self.logged_partition,
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


#: the table property naming Delta's column mapping mode (`none`, `name`, `id`)
MAPPING_MODE = "delta.columnMapping.mode"
#: a column-mapped field's metadata keys: its physical name and its field id
PHYSICAL_NAME = "delta.columnMapping.physicalName"
MAPPING_ID = "delta.columnMapping.id"


def column_mapping(metadata: Mapping[str, Any]) -> dict[str, tuple[str, int | None]] | None:
    """Under Delta column mapping (`delta.columnMapping.mode` `name` or `id`), each
    top-level column's physical name and field id: what a data file we write names its
    columns and a log we write keys `partitionValues` by, since Delta readers look columns
    up by those, never by the column's name (a file naming them so reads as NULLs). None
    without column mapping; a column without a physical name keeps its own."""
    mode = str((metadata.get("configuration") or {}).get(MAPPING_MODE) or "none")
    if mode.strip().lower() == "none":
        return None
    try:
        fields = json.loads(str(metadata.get("schemaString") or "{}")).get("fields") or []
    except ValueError:
        fields = []
    out: dict[str, tuple[str, int | None]] = {}
    for f in fields:
        meta = f.get("metadata") or {}
        physical, fid = meta.get(PHYSICAL_NAME), meta.get(MAPPING_ID)
        out[str(f.get("name"))] = (physical if isinstance(physical, str) and physical
                                   else str(f.get("name")),
                                   fid if isinstance(fid, int) else None)
    return out


def physical_keys(mapping: Mapping[str, tuple[str, int | None]],
                  values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` keyed by the physical names of `column_mapping` (a name it lacks kept)."""
    return {mapping.get(k, (k, None))[0]: v for k, v in values.items()}


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
               io: Mapping[str, str] | None = None, cls: type | None = None) -> Any:
    """A `deltalake.DeltaTable` (or subclass `cls`) at `version` (the latest when None),
    opened with the storage options the server's FileIO properties `io` give
    (`spark_lakeversion.fileio`)."""
    module = deltalake()
    try:
        return (cls or module.DeltaTable)(
            location, version=version,
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


def canonical_schema(text: str) -> str:
    """A schemaString in one spelling: deltalake gives a field's metadata keys in no fixed
    order (a column-mapped field's physical name and id swap places between two reads of
    one table), so two reads of one schema would compare as a schema change (a merge's
    `MetadataChanged`)."""
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


def metadata_action(table: Any) -> dict[str, Any]:
    meta = table.metadata()
    return {"id": meta.id, "name": meta.name, "description": meta.description,
            "format": {"provider": "parquet", "options": {}},
            "schemaString": canonical_schema(table.schema().to_json()),
            "partitionColumns": list(meta.partition_columns),
            "createdTime": meta.created_time,
            # sorted: deltalake gives its entries in no fixed order either
            "configuration": dict(sorted((meta.configuration or {}).items()))}


def check_protocol(protocol: Mapping[str, Any], location: str) -> None:
    """Refuse tables whose protocol needs what delta-rs never writes (deletion vectors)."""
    features = set(protocol.get("readerFeatures") or ()) | set(
        protocol.get("writerFeatures") or ())
    bad = sorted(features & UNSUPPORTED_FEATURES)
    if bad:
        raise InvalidInput(f"the Delta table at {location} requires {', '.join(bad)}, which "
                           "spark-lakeversion cannot write on branches: disable them first")


def read_state(location: str, version: int, *, io: Mapping[str, str] | None = None
               ) -> LogState:
    """Live files, protocol and metadata of `location` at `version`."""
    import pyarrow as pa

    table = open_table(location, version, io=io)
    state = LogState(location, version, protocol_action(table), metadata_action(table))
    actions = pa.table(table.get_add_actions(flatten=False))
    names = set(actions.column_names)
    mapping = column_mapping(state.metadata)
    for row in actions.to_pylist():
        partition = {k: partition_text(v) for k, v in (row.get("partition") or {}).items()} \
            if "partition" in names else {}
        path = str(row["path"])
        uri = absolute(location, path)
        state.files[normalize_path(unquote(uri))] = DataFile(
            path, uri, partition, int(row["size_bytes"]), int(row["modification_time"]),
            row.get("num_records"), None,
            {k: row.get(k) for k in ("null_count", "min", "max")},
            physical_keys(mapping, partition) if mapping else None)
    return state


def log_files(location: str, io: Mapping[str, str] | None = None) -> list[tuple[int, str]]:
    """Every versioned file of the log (commits, checkpoints) as (version, URI)."""
    directory = log_dir(location)
    return [(int(n[:20]), f"{directory}/{n}") for n in storage.list_names(directory, io)
            if len(n) > 21 and n[:20].isdigit() and n[20] == "."]


def latest_version(location: str, io: Mapping[str, str] | None = None) -> int | None:
    """The newest JSON commit of a log (None: no log yet)."""
    versions = [int(n[:20]) for n in storage.list_names(log_dir(location), io)
                if len(n) == 25 and n.endswith(".json") and n[:20].isdigit()]
    return max(versions, default=None)


def commit_uri(location: str, version: int) -> str:
    return f"{log_dir(location)}/{log_name(version)}"


def commit_actions(location: str, version: int, io: Mapping[str, str] | None = None
                   ) -> list[dict[str, Any]]:
    """The actions of one JSON commit (empty when absent or unreadable)."""
    try:
        data = storage.read_bytes(commit_uri(location, version), io)
        return [json.loads(line) for line in (data or b"").decode("utf-8").splitlines()
                if line.strip()]
    except (OSError, ValueError):
        return []


def commit_info(version: int, location: str, io: Mapping[str, str] | None = None
                ) -> dict[str, Any]:
    """The commitInfo of one version (empty when absent or unreadable)."""
    for action in commit_actions(location, version, io):
        if "commitInfo" in action:
            return dict(action["commitInfo"])
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
                 blind_append: bool = False, io: Mapping[str, str] | None = None
                 ) -> str | None:
    """Write `version` of the log at `location` if nobody has: the created file's URI, or
    None when the version exists already (a lost race)."""
    info = {"commitInfo": {"timestamp": int(time.time() * 1000), "operation": operation,
                           "operationParameters": dict(parameters or {}),
                           "isBlindAppend": blind_append,
                           "engineInfo": ENGINE}}
    text = "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in [info, *actions])
    uri = commit_uri(location, version)
    return uri if storage.put_if_absent(uri, text.encode("utf-8"), io) else None


def delete_created(uris: Iterable[str], io: Mapping[str, str] | None) -> None:
    """Remove files this request created (its commit lost the race in the store), with
    the FileIO they were written with (no default: on S3 another one cannot reach them)."""
    for uri in uris:
        storage.remove(uri, io)
