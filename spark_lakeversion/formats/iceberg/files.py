"""File safety of the Iceberg catalog: what a client may make the server read or write.

Three rules (issue 9):

- every location a table's metadata names (its `location`, the `write.*.path` properties,
  statistics files, the manifest lists of snapshots it adds and their manifests) lies
  under the server's `AllowedRoots`, checked by `validate_metadata` *before* anything is
  written, on every surface (Iceberg REST and `/api/v1/commits`);
- a metadata file is written create-exclusive (`write_new_file`), and its clean-up removes
  only a file this very call created, at exactly the path it created;
- a file named by a client (`register`, `/api/v1/commits`) is read by `read_client_file`:
  only a regular file under a root, at most `MAX_METADATA_BYTES`, within a timeout, and
  every failure is the same generic error, so the answers cannot map the server's disk.
"""

from __future__ import annotations

import concurrent.futures
import errno
import io as _io
import json
import os
import stat
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from pyiceberg.io import FileIO, InputFile, InputStream
from pyiceberg.manifest import read_manifest_list
from pyiceberg.serializers import FromByteStream
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.utils.config import Config

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import FileIOConfig, pyiceberg_file_io
from spark_lakeversion.formats.iceberg import v3
from spark_lakeversion.locations import AllowedRoots, Location, parse_location

#: table properties that move where a table's files go: each must lie inside a root
PATH_PROPERTIES = ("write.data.path", "write.metadata.path", "write.object-storage.path",
                   "write.folder-storage.path")
#: properties naming Python code that pyiceberg would import (to place files, to open them):
#: never honoured by the server (it computes metadata paths itself and opens files with its
#: own FileIO configuration), and refused so no reader of the table imports a writer's choice
CODE_PROPERTIES = ("write.py-location-provider.impl", "py-io-impl")
MAX_METADATA_BYTES = 16 * 1024 * 1024
MAX_MANIFEST_LIST_BYTES = 64 * 1024 * 1024
READ_TIMEOUT_SECONDS = 30.0
UNREADABLE = "not a readable Iceberg metadata file under the allowed locations"

_READERS = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                 thread_name_prefix="lakeversion-read")


class UnreadableFile(InvalidInput):
    """A client-named file that is missing, special, too big, outside the roots or slow:
    deliberately one message for all of them."""


def file_io(location: str, io_properties: Mapping[str, str] | None = None) -> FileIO:
    """pyiceberg's FileIO for `location` under the server's FileIO properties, as
    `spark_lakeversion.fileio.pyiceberg_file_io` builds and caches it (never from a
    client's table properties)."""
    opened: FileIO = pyiceberg_file_io(location, io_properties)
    return opened


# ---- validation -----------------------------------------------------------------------------
def validate_metadata(metadata: TableMetadata, roots: AllowedRoots,
                      base: TableMetadata | None = None, *, what: str = "table",
                      read_current_only: bool = False,
                      io_properties: Mapping[str, str] | None = None,
                      written_lists: frozenset[str] = frozenset()) -> Location:
    """Check every location `metadata` would make the server write or follow; returns the
    parsed table location.

    Snapshots not in `base` must have a readable manifest list (a regular file under a
    root) whose manifests lie under a root too. With `read_current_only` (a registered or
    API-committed table: its history may be long) every snapshot's manifest list must lie
    under a root, and only the current snapshot's is read. A list in `written_lists` was
    written by the server from manifests it checked (a rebased append): only its location
    is checked."""
    location = roots.check(metadata.location, f"{what} location", strictly=True)
    for prop in PATH_PROPERTIES:
        value = metadata.properties.get(prop)
        if value is not None:
            roots.check(value, f"{what} property {prop}", strictly=True)
    for prop in CODE_PROPERTIES:
        if prop in metadata.properties:
            raise InvalidInput(f"{what} property {prop} is not allowed: it names Python code "
                               "readers would import; the catalog server decides where "
                               "metadata files go and how files are opened")
    known_stats = set(statistics_paths(base)) if base is not None else set()
    for path in statistics_paths(metadata):
        if path not in known_stats:
            roots.check(path, f"{what} statistics-path")
    known = {s.snapshot_id for s in base.snapshots} if base is not None else set()
    for snapshot in metadata.snapshots:
        if snapshot.snapshot_id in known:
            continue
        label = f"{what} snapshot {snapshot.snapshot_id}"
        if snapshot.manifest_list in written_lists or \
                read_current_only and snapshot.snapshot_id != metadata.current_snapshot_id:
            roots.check(snapshot.manifest_list, f"{label} manifest list")
        else:
            check_manifest_list(snapshot.manifest_list, roots, what=label,
                                io_properties=io_properties)
    return location


def path_properties(metadata: TableMetadata) -> dict[str, str]:
    """The `write.*.path` properties a table sets (each a directory it writes into)."""
    return {p: metadata.properties[p] for p in PATH_PROPERTIES if p in metadata.properties}


def claimed_locations(metadata: TableMetadata) -> dict[str, str]:
    """What a table owns against every other table (`formats.validate.check_claims`): its
    location and every `write.*.path` directory, by the name a refusal shows."""
    return {"location": metadata.location,
            **{f"property {p}": v for p, v in path_properties(metadata).items()}}


def statistics_paths(metadata: TableMetadata) -> list[str]:
    """The statistics and partition-statistics files a table's metadata names (gc follows
    them, so they must lie under a root like every other file it names)."""
    return [f.statistics_path for f in [*metadata.statistics, *metadata.partition_statistics]]


def check_manifest_list(manifest_list: str | None, roots: AllowedRoots, *, what: str,
                        io_properties: Mapping[str, str] | None = None) -> None:
    """A new snapshot's manifest list: under a root, a regular readable file, and every
    manifest it lists under a root."""
    if not manifest_list:
        raise InvalidInput(f"{what} has no manifest list")
    roots.check(manifest_list, f"{what} manifest list")
    try:
        data = read_client_file(manifest_list, roots, limit=MAX_MANIFEST_LIST_BYTES,
                                io_properties=io_properties)
        manifests = list(read_manifest_list(_BytesInput(manifest_list, data)))
    except Exception:  # noqa: BLE001 - one answer for missing, special, malformed
        raise InvalidInput(f"{what}: manifest list {manifest_list!r} is not a readable "
                           "Iceberg manifest list under the allowed locations") from None
    for manifest in manifests:
        roots.check(manifest.manifest_path, f"{what} manifest")


def canonical_location(text: object) -> str | None:
    """`text` as a canonical location URI, None when it does not parse (old stored values)."""
    try:
        return parse_location(text).uri
    except InvalidInput:
        return None


# ---- reading what a client names --------------------------------------------------------------
def read_client_file(location: str, roots: AllowedRoots, *,
                     limit: int = MAX_METADATA_BYTES,
                     timeout: float = READ_TIMEOUT_SECONDS,
                     io_properties: Mapping[str, str] | None = None) -> bytes:
    """The bytes of a regular file under a root, or `UnreadableFile` (one message for
    everything: missing, a directory, a pipe, a device, too big, outside the roots, slow)."""
    try:
        parsed = roots.check(location, "file")
    except InvalidInput:
        raise UnreadableFile(UNREADABLE) from None
    future = _READERS.submit(_read_bounded, parsed, location, roots, limit, io_properties)
    try:
        return future.result(timeout=timeout)
    except Exception:  # noqa: BLE001 - deliberately generic, see the docstring
        future.cancel()
        raise UnreadableFile(UNREADABLE) from None


def _read_bounded(parsed: Location, location: str, roots: AllowedRoots, limit: int,
                  io_properties: Mapping[str, str] | None) -> bytes:
    path = parsed.local_path
    if path is not None:
        real = os.path.realpath(path)  # a symlink may not lead out of the roots
        if not roots.contains(parse_location(real)):
            raise OSError(errno.EACCES, "outside the roots")
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat decides on the open fd
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                raise OSError(errno.EINVAL, "not a regular file of acceptable size")
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(limit + 1)
        finally:
            os.close(fd)
    else:
        input_file = file_io(location, io_properties).new_input(location)
        if len(input_file) > limit:
            raise OSError(errno.EFBIG, "too big")
        with input_file.open() as stream:
            data = stream.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, "too big")
    return data


def read_client_metadata(location: str, roots: AllowedRoots,
                         io_properties: Mapping[str, str] | None = None) -> TableMetadata:
    """Table metadata from a client-named file, or `UnreadableFile`."""
    data = read_client_file(location, roots, io_properties=io_properties)
    try:
        metadata = FromByteStream.table_metadata(_io.BytesIO(data))
        unknown = v3.unmodelled_fields(json.loads(data)) if v3.is_v3(metadata) else []
    except Exception:  # noqa: BLE001 - never quote a file's contents back to a client
        raise UnreadableFile(UNREADABLE) from None
    if unknown:
        raise InvalidInput(f"format-v3 metadata with fields this server cannot carry into "
                           f"its next metadata file: {', '.join(unknown)}")
    return metadata


class _BytesInput(InputFile):
    """Bytes already read (safely) presented as a pyiceberg InputFile."""

    def __init__(self, location: str, data: bytes) -> None:
        super().__init__(location)
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def exists(self) -> bool:
        return True

    def open(self, seekable: bool = True) -> InputStream:
        return _io.BytesIO(self._data)  # type: ignore[return-value]


# ---- writing --------------------------------------------------------------------------------
def new_metadata_path(metadata: TableMetadata, version: int) -> str:
    """Where the next metadata file goes: `write.metadata.path` or `<location>/metadata`,
    uuid-named (computed here, never by a client-chosen location provider)."""
    base = metadata.properties.get("write.metadata.path") or f"{metadata.location}/metadata"
    return f"{base.rstrip('/')}/{max(version, 0):05d}-{uuid.uuid4()}.metadata.json"


def metadata_bytes(metadata: TableMetadata) -> bytes:
    """What pyiceberg's `ToOutputFile.table_metadata` writes (uncompressed names only); v3,
    which pyiceberg will not write, through `v3.metadata_json`."""
    exclude_none = not Config().get_bool("legacy-current-snapshot-id")
    return v3.metadata_json(metadata, exclude_none=exclude_none).encode("utf-8")


_created_lock = threading.Lock()
#: files this process created and has not published yet -> the FileIO properties they
#: were written with (a refused commit removes them with the same ones)
_created: dict[str, FileIOConfig] = {}
#: local directories `write_new_file` created for such a file, deepest first: a refused
#: commit leaves no empty directory behind either
_created_dirs: dict[str, list[str]] = {}


def _make_parents(path: str) -> list[str]:
    """Create the missing parent directories of `path`; those this call created, deepest
    first (a directory another writer creates meanwhile is not ours)."""
    missing: list[str] = []
    parent = os.path.dirname(path)
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    made: list[str] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            continue
        made.append(directory)
    return list(reversed(made))


def _remove_dirs(dirs: list[str]) -> None:
    """Remove directories this process created, deepest first, only while empty."""
    for directory in dirs:
        try:
            os.rmdir(directory)
        except OSError:
            return  # not empty (another file landed) or gone: leave it and its parents


def write_new_file(location: str, data: bytes, io_properties: Mapping[str, str] | None = None
                   ) -> None:
    """Create `location` exclusively and write `data`; an existing file is never touched
    (FileExistsError), and on failure only the file this call created is removed."""
    parsed = parse_location(location, "metadata file")
    path = parsed.local_path
    made: list[str] = []
    if path is not None:
        for attempt in range(2):
            made = _make_parents(path)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileNotFoundError:
                if attempt:  # a concurrent refusal removed its empty directory: once more
                    raise
            except BaseException:
                _remove_dirs(made)
                raise
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            os.close(fd)
            os.unlink(path)  # created by this call (O_EXCL succeeded): ours to remove
            _remove_dirs(made)
            raise
        os.close(fd)
    else:
        fio = file_io(location, io_properties)
        output = fio.new_output(location)
        stream: Any = output.create(overwrite=False)  # FileExistsError when present
        try:
            with stream:
                stream.write(data)
        except BaseException:
            _delete_quietly(fio, location)
            raise
    with _created_lock:
        _created[location] = FileIOConfig.of(io_properties)
        if made:
            _created_dirs[location] = made


def delete_created(location: str) -> None:
    """Remove a metadata file `write_new_file` created in this process and that was never
    published (a refused commit), and the directories it created for it while they are
    empty; any other path is left alone."""
    with _created_lock:
        io_properties = _created.pop(location, None)
        dirs = _created_dirs.pop(location, [])
    if io_properties is None:
        return
    parsed = parse_location(location, "metadata file")
    if parsed.local_path is not None:
        try:
            os.unlink(parsed.local_path)
        except OSError:
            pass
        _remove_dirs(dirs)
        return
    _delete_quietly(file_io(location, io_properties), location)


def forget_created(location: str) -> None:
    """The file was published (committed): it is no longer ours to delete."""
    with _created_lock:
        _created.pop(location, None)
        _created_dirs.pop(location, None)


def _delete_quietly(fio: FileIO, location: str) -> None:
    try:
        fio.delete(location)
    except Exception:  # noqa: BLE001 - an orphan file is harmless, gc finds it
        pass
