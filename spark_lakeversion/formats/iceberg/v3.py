"""Format-v3 table metadata: the one home for what pyiceberg 0.12 models but will not write.

pyiceberg parses v3 metadata (`TableMetadataV3`: row lineage, default values, nanosecond
timestamps) and applies updates to it, but its `model_dump_json` refuses to serialise it
(NotImplementedError). The server writes v3 metadata itself here, with pyiceberg's own
field serialisers (the base model's JSON), and keeps row lineage as the spec requires:

- a v3 table (created as v3 or upgraded to it) starts at `next-row-id` 0;
- every snapshot a commit adds must carry `first-row-id` and `added-rows`, with
  `first-row-id` at or past the table's `next-row-id` (the client assigned its rows'
  ids from there: the server cannot re-number rows inside files it did not write);
- the table's `next-row-id` then moves past every id the snapshot assigned:
  `first-row-id + added-rows`.

Anything else pyiceberg cannot model is refused when the request is parsed, so no field a
client sent is ever silently dropped from a v3 file.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyiceberg.table.metadata import TableMetadata
from pyiceberg.typedef import IcebergBaseModel

from spark_lakeversion.errors import InvalidInput

#: the first format version with row lineage (and the first pyiceberg 0.12 will not write)
ROW_LINEAGE_VERSION = 3


def is_v3(metadata: TableMetadata) -> bool:
    return metadata.format_version >= ROW_LINEAGE_VERSION


def metadata_json(metadata: TableMetadata, *, exclude_none: bool = True) -> str:
    """The metadata-file JSON of any supported version (pyiceberg's own for v1 and v2)."""
    if not is_v3(metadata):
        return metadata.model_dump_json(exclude_none=exclude_none)
    if metadata.next_row_id is None:  # type: ignore[union-attr]
        raise InvalidInput("a format-v3 table needs next-row-id: assign row lineage first")
    # the base model's serialiser: the same field serialisers pyiceberg uses for v2
    return IcebergBaseModel.model_dump_json(metadata, exclude_none=exclude_none)


def with_row_lineage(metadata: TableMetadata, base: TableMetadata | None,
                     what: str = "table") -> TableMetadata:
    """`metadata` (the result of a create or a commit on `base`) with `next-row-id` set as
    the spec requires, or InvalidInput saying which snapshot breaks row lineage."""
    if not is_v3(metadata):
        return metadata
    next_row_id = 0
    if base is not None and is_v3(base) and base.next_row_id is not None:  # type: ignore[union-attr]
        next_row_id = base.next_row_id  # type: ignore[union-attr]
    known = {s.snapshot_id for s in base.snapshots} if base is not None else set()
    for snapshot in metadata.snapshots:
        if snapshot.snapshot_id in known:
            continue
        label = f"{what} snapshot {snapshot.snapshot_id}"
        if snapshot.first_row_id is None or snapshot.added_rows is None:
            raise InvalidInput(f"{label}: a format-v3 snapshot needs first-row-id and "
                               "added-rows (row lineage); write it with a v3 client "
                               "(Iceberg 1.10 or later)")
        if snapshot.first_row_id < next_row_id:
            raise InvalidInput(
                f"{label}: first-row-id {snapshot.first_row_id} is behind the table's "
                f"next-row-id {next_row_id}: its rows would reuse assigned row ids; "
                "reload the table and retry")
        if snapshot.added_rows < 0:
            raise InvalidInput(f"{label}: added-rows {snapshot.added_rows} is negative")
        next_row_id = snapshot.first_row_id + snapshot.added_rows
    if metadata.next_row_id == next_row_id:  # type: ignore[union-attr]
        return metadata
    return metadata.model_copy(update={"next_row_id": next_row_id})


def unsupported_merge_reason(versions: Iterable[int]) -> str | None:
    """Why the content-aware merge cannot replay these sides, None when it can."""
    if any(v >= ROW_LINEAGE_VERSION for v in versions):
        return ("content-aware merge of format-v3 tables is not supported: replaying one "
                "side's files onto the other needs fresh row ids (first-row-id) for its "
                "data files, which the manifests it would copy have already fixed, and its "
                "deletion vectors rebased onto the other side's; merge this table at table "
                "level instead (strategy source-wins or target-wins)")
    return None

