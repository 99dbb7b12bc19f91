"""Fast path reads of the only Avro fields gc needs: manifest paths and data file paths;
and whole records with the file's own schema (`read_records`), which the server's rebase
of appends rewrites (`formats/iceberg/rebase.py`).

pyiceberg's own readers rebuild the Avro-to-Iceberg schema resolution for every file; over
tens of thousands of manifests that resolution is most of the time. Here the resolved
reader is cached per distinct file schema (which all manifests written by one engine
share) and the path is picked by field id. Field ids are those of the Iceberg spec
(500 manifest_path; 2 data_file, 100 file_path), identical in format versions 1 to 3.

Only pyiceberg's Avro building blocks are used; if they move in a later release,
`read_paths` falls back to pyiceberg's public readers (slower, same answer).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from pyiceberg.io import FileIO

_LOCK = threading.Lock()
_READERS: dict[str, tuple[Any, Any]] = {}
_POSITIONS: dict[tuple[str, int], tuple[int, ...]] = {}


def _positions(file_schema: Any, kind: str) -> tuple[int, ...]:
    """Where the path sits in a record read with the file's own schema, by field id."""
    fields = file_schema.as_struct().fields
    ids = [f.field_id for f in fields]
    if kind == "manifest_list":
        return (ids.index(500),)
    data_file = fields[ids.index(2)]
    inner = [f.field_id for f in data_file.field_type.fields]
    return ids.index(2), inner.index(100)


def _projected_records(io: FileIO, path: str, kind: str) -> tuple[list[Any], tuple[int, ...]]:
    _, file_schema, records = read_records(io, path)
    key = (kind, id(file_schema))  # one schema object per distinct header (cached)
    with _LOCK:
        positions = _POSITIONS.get(key)
    if positions is None:
        positions = _positions(file_schema, kind)
        with _LOCK:
            _POSITIONS[key] = positions
    return records, positions


def read_records(io: FileIO, path: str) -> tuple[dict[str, str], Any, list[Any]]:
    """An Avro file's header metadata, its own schema (pyiceberg's `Schema`, field ids
    kept) and every record read with that schema (pyiceberg `Record`s, fields in the
    schema's order): nothing is dropped or defaulted, so the records can be written back."""
    with io.new_input(path).open() as stream:
        data = stream.read()
    return decode_records(data, path)


def decode_records(data: bytes, path: str = "avro file"
                   ) -> tuple[dict[str, str], Any, list[Any]]:
    """`read_records` of bytes already read."""
    from pyiceberg.avro.decoder import new_decoder
    from pyiceberg.avro.file import Block
    from pyiceberg.avro.resolver import resolve_reader

    meta, blocks = raw_blocks(data, path)
    key = meta.get("avro.schema", "")
    with _LOCK:
        resolved = _READERS.get(key)
    if resolved is None:
        from pyiceberg.avro.file import AvroFileHeader

        file_schema = AvroFileHeader(b"", meta, b"").get_schema()
        resolved = (file_schema, resolve_reader(file_schema, file_schema))
        with _LOCK:
            _READERS[key] = resolved
    file_schema, reader = resolved
    codec = _codec(meta)
    records: list[Any] = []
    for count, payload in blocks:
        block: Any = Block(reader=reader, block_records=count,
                           block_decoder=new_decoder(codec.decompress(payload) if codec
                                                     else payload))
        records.extend(block)
    return meta, file_schema, records


@functools.cache
def _header_reader() -> Any:
    """pyiceberg's reader of an Avro file's header, built once (building it walks the
    header's schema: most of the cost of opening a small file)."""
    from pyiceberg.avro.file import META_SCHEMA, AvroFileHeader
    from pyiceberg.avro.resolver import construct_reader

    return construct_reader(META_SCHEMA, {-1: AvroFileHeader})


def raw_blocks(data: bytes, path: str = "avro file"
               ) -> tuple[dict[str, str], list[tuple[int, bytes]]]:
    """An Avro file's header metadata and its blocks as stored (record count, encoded and
    compressed bytes): what a writer with the same schema and codec can copy unchanged."""
    from pyiceberg.avro.decoder import new_decoder

    decoder = new_decoder(data)
    header = _header_reader().read(decoder)
    blocks: list[tuple[int, bytes]] = []
    first = True
    while True:
        if not first:
            try:
                marker = decoder.read(16)
            except EOFError:
                break
            if marker != header.sync:
                raise ValueError(f"{path}: Avro sync marker mismatch")
        first = False
        try:
            count = decoder.read_int()
        except EOFError:
            break
        blocks.append((count, decoder.read_bytes()))
    return dict(header.meta), blocks


def _codec(meta: dict[str, str]) -> Any:
    from pyiceberg.avro.file import AvroFileHeader

    return AvroFileHeader(b"", meta, b"").compression_codec()


def _fallback(io: FileIO, path: str, kind: str) -> list[str]:
    from pyiceberg.manifest import ManifestContent, ManifestFile, read_manifest_list

    if kind == "manifest_list":
        return [m.manifest_path for m in read_manifest_list(io.new_input(path))]
    manifest = ManifestFile.from_args(manifest_path=path, manifest_length=0,
                                      partition_spec_id=0, content=ManifestContent.DATA,
                                      sequence_number=0, min_sequence_number=0,
                                      added_snapshot_id=0)
    return [e.data_file.file_path for e in manifest.fetch_manifest_entry(io,
                                                                         discard_deleted=False)]


def _fast(io: FileIO, path: str, kind: str) -> list[str]:
    records, positions = _projected_records(io, path, kind)
    if kind == "manifest_list":
        return [str(r[positions[0]]) for r in records]
    outer, inner = positions
    return [str(r[outer][inner]) for r in records]


_read: Callable[[FileIO, str, str], list[str]] = _fast


def read_paths(io: FileIO, path: str, kind: str) -> list[str]:
    """The manifest paths of a manifest list (`kind="manifest_list"`), or the data/delete
    file paths of a manifest's entries, all statuses (`kind="manifest"`)."""
    global _read
    try:
        return _read(io, path, kind)
    except (ImportError, AttributeError, TypeError):  # pyiceberg internals moved
        _read = _fallback
        return _fallback(io, path, kind)


_RESOLVED: dict[tuple[str, str], Any] = {}


def _read_resolved(io: FileIO, path: str, kind: str, read_schema: Any, read_types: Any,
                   read_enums: Any) -> list[Any]:
    """Every record of an Avro file read into pyiceberg's classes, as its `AvroFile` does,
    with the resolution cached per (kind, distinct file schema): the file itself is read on
    every call, nothing of its content is kept."""
    from pyiceberg.avro.decoder import new_decoder
    from pyiceberg.avro.file import AvroFileHeader, Block
    from pyiceberg.avro.resolver import resolve_reader

    with io.new_input(path).open() as stream:
        data = stream.read()
    meta, blocks = raw_blocks(data, path)
    key = (kind, meta.get("avro.schema", ""))
    with _LOCK:
        reader = _RESOLVED.get(key)
    if reader is None:
        file_schema = AvroFileHeader(b"", meta, b"").get_schema()
        reader = resolve_reader(file_schema, read_schema, read_types, read_enums)
        with _LOCK:
            _RESOLVED[key] = reader
    codec = _codec(meta)
    records: list[Any] = []
    for count, payload in blocks:
        records.extend(Block(reader=reader, block_records=count,
                             block_decoder=new_decoder(codec.decompress(payload) if codec
                                                       else payload)))
    return records


def read_manifest_list(io: FileIO, path: str) -> list[Any]:
    """pyiceberg's `read_manifest_list` (its `ManifestFile`s, partition summaries and
    content enum included), resolved once per file schema."""
    from pyiceberg.manifest import (
        DEFAULT_READ_VERSION,
        MANIFEST_LIST_FILE_SCHEMAS,
        ManifestContent,
        ManifestFile,
        PartitionFieldSummary,
    )

    return _read_resolved(io, path, "manifest_list",
                          MANIFEST_LIST_FILE_SCHEMAS[DEFAULT_READ_VERSION],
                          {-1: ManifestFile, 508: PartitionFieldSummary},
                          {517: ManifestContent})


def read_live_entries(io: FileIO, manifest: Any) -> list[Any]:
    """pyiceberg's `ManifestFile.fetch_manifest_entry(io, discard_deleted=True)` (entries
    inherit the manifest's sequence numbers and spec), resolved once per file schema."""
    from pyiceberg.manifest import (
        DEFAULT_READ_VERSION,
        MANIFEST_ENTRY_SCHEMAS,
        DataFile,
        DataFileContent,
        FileFormat,
        ManifestEntry,
        ManifestEntryStatus,
        _inherit_from_manifest,
    )

    entries = _read_resolved(io, manifest.manifest_path, "manifest",
                             MANIFEST_ENTRY_SCHEMAS[DEFAULT_READ_VERSION],
                             {-1: ManifestEntry, 2: DataFile},
                             {0: ManifestEntryStatus, 101: FileFormat, 134: DataFileContent})
    return [_inherit_from_manifest(e, manifest) for e in entries
            if e.status != ManifestEntryStatus.DELETED]
