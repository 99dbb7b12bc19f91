"""A Delta table's actions at one version when its log no longer starts at version 0
(cleaned up to a checkpoint): its protocol, metaData and one `add` per live file with
stats, as deltalake reads them from the checkpoint and the JSON commits after it. The
translation then starts its history at that version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.statistics import add_stats


def actions_at(location: str, version: int, io: Mapping[str, str] | None
               ) -> list[dict[str, Any]]:
    import pyarrow as pa

    table = log.open_table(location, version, io=io)
    actions: list[dict[str, Any]] = [{"protocol": log.protocol_action(table)},
                                     {"metaData": log.metadata_action(table)}]
    for row in pa.table(table.get_add_actions(flatten=False)).to_pylist():
        partition = {k: log.partition_text(v) for k, v in (row.get("partition") or {}).items()}
        add: dict[str, Any] = {
            "path": row["path"], "partitionValues": partition, "size": row["size_bytes"],
            "dataChange": False,
            "stats": add_stats(row)}
        vector = row.get("deletionVector")
        kind = vector.get("storageType") if isinstance(vector, dict) else vector
        if kind:
            add["deletionVector"] = {"storageType": kind}
        actions.append({"add": add})
    return actions
