"""formats/iceberg/v3.py on pyiceberg's own models: v3 metadata JSON, the upgrade to v3 and
row lineage (`next-row-id`) where pyiceberg 0.12 would leave it wrong or unset."""

from __future__ import annotations

import json

import pytest
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil, new_table_metadata
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import (
    AddSnapshotUpdate,
    UpgradeFormatVersionUpdate,
    update_table_metadata,
)

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg import v3
from tests.lake import ID_ICEBERG

UPGRADE = UpgradeFormatVersionUpdate.model_validate({"format-version": 3})


def _table(version: int) -> TableMetadata:
    metadata = new_table_metadata(ID_ICEBERG, UNPARTITIONED_PARTITION_SPEC, UNSORTED_SORT_ORDER,
                                  "file:///wh/db/t", {"format-version": str(version)})
    return v3.with_row_lineage(metadata, None)


def _add(snapshot_id: int, **lineage: int) -> AddSnapshotUpdate:
    return AddSnapshotUpdate(snapshot=Snapshot.model_validate({
        "snapshot-id": snapshot_id, "sequence-number": snapshot_id,
        "timestamp-ms": 1_700_000_000_000,
        "manifest-list": f"file:///wh/db/t/metadata/snap-{snapshot_id}.avro",
        **{k.replace("_", "-"): v for k, v in lineage.items()}}))


def test_a_new_v3_table_starts_row_lineage_and_serialises() -> None:
    metadata = _table(3)
    assert v3.next_row_id(metadata) == 0
    text = v3.metadata_json(metadata)
    assert json.loads(text)["next-row-id"] == 0
    assert TableMetadataUtil.parse_raw(text) == metadata
    assert "next-row-id" not in json.loads(v3.metadata_json(_table(2)))


def test_upgrade_to_v3_through_pyicebergs_update_dispatch() -> None:
    base = _table(2)
    upgraded = update_table_metadata(
        base, v3.prepare_updates([UPGRADE]))
    assert (upgraded.format_version, v3.next_row_id(upgraded)) == (3, 0)
    assert json.loads(v3.metadata_json(upgraded))["format-version"] == 3
    # without it, pyiceberg 0.12 refuses the upgrade
    with pytest.raises(ValueError, match="Unsupported table format version: 3"):
        update_table_metadata(base, (UPGRADE,))


def test_next_row_id_moves_past_every_assigned_id() -> None:
    base = _table(3)
    # a snapshot starting past next-row-id (a gap): pyiceberg alone would set 0 + 2
    added = update_table_metadata(base, (_add(1, first_row_id=7, added_rows=2),))
    assert v3.next_row_id(v3.with_row_lineage(added, base)) == 9
    negative = update_table_metadata(base, (_add(1, first_row_id=0, added_rows=-3),))
    with pytest.raises(InvalidInput, match="added-rows -3 is negative"):
        v3.with_row_lineage(negative, base)


def test_fields_pyiceberg_would_drop_and_the_merge_reason() -> None:
    raw = json.loads(v3.metadata_json(_table(3)))
    assert v3.unmodelled_fields(raw) == []
    raw["encryption-keys"] = []
    raw["snapshots"] = [{"snapshot-id": 1, "key-id": "k"}]
    assert v3.unmodelled_fields(raw) == ["encryption-keys", "snapshots.key-id"]
    assert v3.unsupported_merge_reason([2, 2, 2]) is None
    assert "format-v3" in (v3.unsupported_merge_reason([3, 3, 3]) or "")
