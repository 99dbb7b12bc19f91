"""A Delta table's actions at one version when its log no longer starts at version 0
(cleaned up to a checkpoint): its protocol, metaData and one `add` per live file with
stats, as deltalake reads them from the checkpoint and the JSON commits after it. The
translation then starts its history at that version."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from spark_lakeversion.formats.delta import log


def actions_at(location: str, version: int, io: Mapping[str, str] | None
               ) -> list[dict[str, Any]]:
    import pyarrow as pa

    table = log.open_table(location, version, io=io)
    actions: list[dict[str, Any]] = [{"protocol": log.protocol_action(table)},
                                     {"metaData": log.metadata_action(table)}]
    adds = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    for row in adds:
        partition = {k[len("partition."):]: log.partition_text(v)
                     for k, v in row.items() if k.startswith("partition.")}
        stats: dict[str, Any] = {"numRecords": row.get("num_records")}
        for prefix, name in (("min.", "minValues"), ("max.", "maxValues"),
                             ("null_count.", "nullCount")):
            found: dict[str, Any] = {}
            for key, value in row.items():
                if key.startswith(prefix) and value is not None:
                    _nest(found, key[len(prefix):].split("."), value)
            stats[name] = found
        add: dict[str, Any] = {"path": row["path"], "partitionValues": partition,
                               "size": row["size_bytes"], "dataChange": False,
                               "stats": json.dumps(stats, default=str)}
        if row.get("deletionVector.storageType") or row.get("deletionVector"):
            add["deletionVector"] = {"storageType": row.get("deletionVector.storageType")}
        actions.append({"add": add})
    return actions


def _nest(into: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        into = into.setdefault(part, {})
    into[path[-1]] = value
