"""Iceberg schema changes a Delta table can take, as its new `schemaString`: added optional
columns (top-level or in structs), and renames when the table has column mapping (Delta's
physical names stay, so the files still read). Anything else (dropping a column, changing a
type or nullability, renaming without column mapping) is refused with the reason."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pyiceberg.schema import Schema
from pyiceberg.types import (
    IcebergType,
    ListType,
    MapType,
    NestedField,
    StructType,
)

from spark_lakeversion.formats.delta.iceberg.errors import Untranslatable
from spark_lakeversion.formats.delta.iceberg.schema import (
    MAPPING_ID,
    MAPPING_MODE,
    PHYSICAL_NAME,
    delta_primitive,
)


def refused(why: str) -> Untranslatable:
    return Untranslatable(f"this schema change cannot become a Delta metaData action: {why}")


def delta_type(itype: IcebergType, name: str) -> Any:
    """An Iceberg type as Delta's schema JSON (for a new column)."""
    primitive = delta_primitive(itype)
    if primitive is not None:
        return primitive
    if isinstance(itype, StructType):
        return {"type": "struct", "fields": [_new_field(f) for f in itype.fields]}
    if isinstance(itype, ListType):
        return {"type": "array", "elementType": delta_type(itype.element_type, name),
                "containsNull": not itype.element_required}
    if isinstance(itype, MapType):
        return {"type": "map", "keyType": delta_type(itype.key_type, name),
                "valueType": delta_type(itype.value_type, name),
                "valueContainsNull": not itype.value_required}
    raise refused(f"column {name} has type {itype}, which Delta cannot hold")


def _new_field(field: NestedField, mapped: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if mapped:
        metadata = {MAPPING_ID: field.field_id, PHYSICAL_NAME: f"col-{field.field_id}"}
    return {"name": field.name, "type": delta_type(field.field_type, field.name),
            "nullable": not field.required, "metadata": metadata}


def evolve(delta_meta: Mapping[str, Any], old: Schema, new: Schema) -> dict[str, Any]:
    """The Delta metaData action that gives the table `new` (served as `old` now)."""
    configuration = dict(delta_meta.get("configuration") or {})
    mapped = (configuration.get(MAPPING_MODE) or "none").lower() in ("name", "id")
    delta = json.loads(delta_meta["schemaString"])
    delta = _struct(delta, old.as_struct(), new.as_struct(), mapped, ())
    if mapped:
        configuration["delta.columnMapping.maxColumnId"] = str(max(
            int(configuration.get("delta.columnMapping.maxColumnId", "0") or 0),
            new.highest_field_id))
    partition_columns = list(delta_meta.get("partitionColumns") or [])
    renamed = {f.name for f in old.fields} - {f.name for f in new.fields}
    if renamed & set(partition_columns):
        raise refused("a partition column cannot be renamed")
    return {**delta_meta, "schemaString": json.dumps(delta, separators=(",", ":")),
            "configuration": configuration}


def _struct(delta: dict[str, Any], old: StructType, new: StructType, mapped: bool,
            path: tuple[str, ...]) -> dict[str, Any]:
    old_by_id = {f.field_id: f for f in old.fields}
    new_ids = {f.field_id for f in new.fields}
    for f in old.fields:
        if f.field_id not in new_ids:
            raise refused(f"column {'.'.join((*path, f.name))} is dropped (Delta drops "
                          "columns only with column mapping, through Delta)")
    delta_fields = {d["name"]: d for d in delta.get("fields") or []}
    fields: list[dict[str, Any]] = []
    for f in new.fields:
        here = ".".join((*path, f.name))
        before = old_by_id.get(f.field_id)
        if before is None:
            if f.required:
                raise refused(f"new column {here} is required (a new column must be "
                              "nullable: existing rows have no value)")
            fields.append(_new_field(f, mapped))
            continue
        entry = dict(delta_fields[before.name])
        if before.name != f.name:
            if not mapped:
                raise refused(f"column {'.'.join((*path, before.name))} is renamed to {here}: "
                              "Delta renames columns only with column mapping "
                              "(delta.columnMapping.mode=name)")
            entry["name"] = f.name
        if before.required != f.required:
            raise refused(f"column {here} changes nullability")
        if isinstance(f.field_type, StructType) and isinstance(before.field_type, StructType):
            entry["type"] = _struct(entry["type"], before.field_type, f.field_type, mapped,
                                    (*path, f.name))
        elif f.field_type != before.field_type:
            raise refused(f"column {here} changes type from {before.field_type} to "
                          f"{f.field_type}")
        fields.append(entry)
    return {**delta, "fields": fields}
