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

Types and update kinds pyiceberg cannot model (e.g. variant, geometry, encryption keys) are
refused when the request is parsed (400); a registered v3 file holding fields pyiceberg
would drop from the next metadata file is refused too (`unmodelled_fields`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyiceberg.table.metadata import TableMetadata, TableMetadataV3
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update import (
    TableUpdate,
    UpgradeFormatVersionUpdate,
    _apply_table_update,
    _TableMetadataUpdateContext,
)
from pyiceberg.typedef import IcebergBaseModel

from spark_lakeversion.errors import InvalidInput

#: the first format version with row lineage (and the first pyiceberg 0.12 will not write)
ROW_LINEAGE_VERSION = 3


def is_v3(metadata: TableMetadata) -> bool:
    return metadata.format_version >= ROW_LINEAGE_VERSION


def next_row_id(metadata: TableMetadata) -> int | None:
    """The table's `next-row-id` (None before v3, or where pyiceberg left it unset)."""
    value = getattr(metadata, "next_row_id", None)
    return value if isinstance(value, int) else None


def metadata_json(metadata: TableMetadata, *, exclude_none: bool = True) -> str:
    """The metadata-file JSON of any supported version (pyiceberg's own for v1 and v2)."""
    if not is_v3(metadata):
        return metadata.model_dump_json(exclude_none=exclude_none)
    if next_row_id(metadata) is None:
        raise InvalidInput("a format-v3 table needs next-row-id: assign row lineage first")
    # the base model's serialiser: the same field serialisers pyiceberg uses for v2
    return IcebergBaseModel.model_dump_json(metadata, exclude_none=exclude_none)


class _UpgradeToV3(UpgradeFormatVersionUpdate):
    """`upgrade-format-version` to 3, which pyiceberg 0.12 refuses: applied by the handler
    below, registered on pyiceberg's own dispatch of table updates."""


@_apply_table_update.register(_UpgradeToV3)
def _upgrade_to_v3(update: _UpgradeToV3, base: TableMetadata,
                   context: _TableMetadataUpdateContext) -> TableMetadata:
    if base.format_version > ROW_LINEAGE_VERSION:
        raise ValueError(f"Cannot downgrade v{base.format_version} table to v3")
    if base.format_version == ROW_LINEAGE_VERSION:
        return base
    context.add_update(update)
    # row lineage starts at 0: rows written before the upgrade have no row ids
    return TableMetadataV3.model_construct(**{**dict(base), "format_version": 3,
                                              "next_row_id": 0})


def prepare_updates(updates: Sequence[TableUpdate]) -> tuple[TableUpdate, ...]:
    """The client's updates, with an upgrade to v3 applied by this module."""
    return tuple(_UpgradeToV3.model_validate({"format-version": ROW_LINEAGE_VERSION})
                 if isinstance(u, UpgradeFormatVersionUpdate)
                 and u.format_version == ROW_LINEAGE_VERSION else u
                 for u in updates)


def with_row_lineage(metadata: TableMetadata, base: TableMetadata | None,
                     what: str = "table") -> TableMetadata:
    """`metadata` (the result of a create or a commit on `base`) with `next-row-id` set as
    the spec requires, or InvalidInput saying which snapshot breaks row lineage."""
    if not is_v3(metadata):
        return metadata
    assigned = (next_row_id(base) if base is not None and is_v3(base) else None) or 0
    known = {s.snapshot_id for s in base.snapshots} if base is not None else set()
    for snapshot in metadata.snapshots:
        if snapshot.snapshot_id in known:
            continue
        label = f"{what} snapshot {snapshot.snapshot_id}"
        if snapshot.first_row_id is None or snapshot.added_rows is None:
            raise InvalidInput(f"{label}: a format-v3 snapshot needs first-row-id and "
                               "added-rows (row lineage); write it with a v3 client "
                               "(Iceberg 1.10 or later)")
        if snapshot.first_row_id < assigned:
            raise InvalidInput(
                f"{label}: first-row-id {snapshot.first_row_id} is behind the table's "
                f"next-row-id {assigned}: its rows would reuse assigned row ids; "
                "reload the table and retry")
        if snapshot.added_rows < 0:
            raise InvalidInput(f"{label}: added-rows {snapshot.added_rows} is negative")
        assigned = snapshot.first_row_id + snapshot.added_rows
    if next_row_id(metadata) == assigned:
        return metadata
    return metadata.model_copy(update={"next_row_id": assigned})


def unmodelled_fields(raw: Mapping[str, Any]) -> list[str]:
    """Fields of a v3 metadata file (written elsewhere, e.g. registered) that pyiceberg's
    model does not carry: the server's next metadata file would silently lose them."""
    out = [k for k in raw if k not in _aliases(TableMetadataV3)]
    snapshot_fields = _aliases(Snapshot)
    for snapshot in raw.get("snapshots") or []:
        if isinstance(snapshot, dict):
            out += [f"snapshots.{k}" for k in snapshot if k not in snapshot_fields]
    return sorted(set(out))


def _aliases(model: type[IcebergBaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def unsupported_merge_reason(versions: Iterable[int]) -> str | None:
    """Why the content-aware merge cannot replay these sides, None when it can."""
    if any(v >= ROW_LINEAGE_VERSION for v in versions):
        return ("content-aware merge of format-v3 tables is not supported: replaying one "
                "side's files onto the other needs fresh row ids (first-row-id) for its "
                "data files, which the manifests it would copy have already fixed, and its "
                "deletion vectors rebased onto the other side's; merge this table at table "
                "level instead (strategy source-wins or target-wins)")
    return None

