"""Delta schemas as Iceberg schemas: field ids from Delta column mapping when the table
has it, else ids kept stable by column path across versions (a new column gets a new id,
an existing one keeps its own), plus the name mapping that lets Iceberg readers match
Parquet columns without field ids by name. Identity partition specs on Delta's partition
columns, and Delta's partition value strings as Iceberg values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
)

from spark_lakeversion.formats.delta.iceberg import values
from spark_lakeversion.formats.delta.iceberg.errors import untranslatable

MAPPING_ID = "delta.columnMapping.id"
PHYSICAL_NAME = "delta.columnMapping.physicalName"
MAPPING_MODE = "delta.columnMapping.mode"
#: the first id of an Iceberg partition field (as Iceberg assigns them)
PARTITION_FIELD_BASE = 1000

_PRIMITIVES: dict[str, IcebergType] = {
    "string": StringType(), "long": LongType(), "integer": IntegerType(),
    "short": IntegerType(), "byte": IntegerType(), "float": FloatType(),
    "double": DoubleType(), "boolean": BooleanType(), "binary": BinaryType(),
    "date": DateType(), "timestamp": TimestamptzType(), "timestamp_ntz": TimestampType(),
}


def delta_primitive(itype: IcebergType) -> str | None:
    """The Delta name of an Iceberg primitive (the inverse of `_PRIMITIVES`; Delta's byte
    and short come back as integer)."""
    for name, value in _PRIMITIVES.items():
        if value == itype and name not in ("short", "byte"):
            return name
    if isinstance(itype, DecimalType):
        return f"decimal({itype.precision},{itype.scale})"
    return None


@dataclass(frozen=True)
class Column:
    """A top-level or nested column: its Iceberg id, logical path and Parquet name."""

    field_id: int
    path: tuple[str, ...]
    physical: str
    type: IcebergType


@dataclass(frozen=True)
class Translated:
    """One Delta schema in Iceberg terms."""

    schema: Schema
    columns: dict[tuple[str, ...], Column]  # by logical path
    name_mapping: list[dict[str, Any]]
    last_column_id: int
    mapped: bool  # column mapping on: Parquet files carry these field ids

    @cached_property
    def by_physical(self) -> dict[tuple[str, ...], Column]:
        """Columns by their physical path (how stats and partition values name them)."""
        out: dict[tuple[str, ...], Column] = {}
        for column in self.columns.values():
            physical = tuple(self.columns[column.path[:i + 1]].physical
                             for i in range(len(column.path)))
            out[physical] = column
        return out


class _Ids:
    """Field ids: column mapping's, or kept by path from the previous version's schema."""

    def __init__(self, previous: Mapping[tuple[str, ...], int], last_id: int,
                 mapped: bool) -> None:
        self.previous = previous
        self.last_id = last_id
        self.mapped = mapped

    def next(self, path: tuple[str, ...], metadata: Mapping[str, Any] | None) -> int:
        if self.mapped and metadata and isinstance(metadata.get(MAPPING_ID), int):
            value = int(metadata[MAPPING_ID])
            self.last_id = max(self.last_id, value)
            return value
        if not self.mapped and path in self.previous:
            return self.previous[path]
        self.last_id += 1
        return self.last_id


def translate_schema(schema_string: str, configuration: Mapping[str, str],
                     previous: Translated | None = None) -> Translated:
    """Delta's `schemaString` as an Iceberg schema (schema id assigned by the caller)."""
    try:
        delta = json.loads(schema_string)
    except ValueError:
        raise untranslatable("its schema is not valid JSON") from None
    mode = (configuration.get(MAPPING_MODE) or "none").lower()
    mapped = mode in ("name", "id")
    if mapped:
        # nested ids (lists, maps) are ours, above every column-mapping id
        max_id = int(configuration.get("delta.columnMapping.maxColumnId", "0") or 0)
        ids = _Ids({}, max(max_id, previous.last_column_id if previous else 0), True)
        # first pass: the mapped ids themselves, so ours never collide with them
        ids.last_id = max(ids.last_id, _max_mapped(delta))
    else:
        prev = {c.path: c.field_id for c in previous.columns.values()} if previous else {}
        ids = _Ids(prev, previous.last_column_id if previous else 0, False)
    columns: dict[tuple[str, ...], Column] = {}
    fields, mapping = _struct(delta, (), ids, columns)
    return Translated(Schema(*fields), columns, mapping, ids.last_id, mapped)


def _max_mapped(node: Any) -> int:
    found = 0
    if isinstance(node, dict):
        meta = node.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get(MAPPING_ID), int):
            found = int(meta[MAPPING_ID])
        for value in node.values():
            found = max(found, _max_mapped(value))
    elif isinstance(node, list):
        for value in node:
            found = max(found, _max_mapped(value))
    return found


def _struct(node: Any, path: tuple[str, ...], ids: _Ids,
            columns: dict[tuple[str, ...], Column]
            ) -> tuple[list[NestedField], list[dict[str, Any]]]:
    if not isinstance(node, dict) or node.get("type") != "struct":
        raise untranslatable(f"a struct at {'.'.join(path) or 'the top level'} is malformed")
    fields: list[NestedField] = []
    mapping: list[dict[str, Any]] = []
    for field in node.get("fields") or []:
        name = field.get("name")
        if not isinstance(name, str):
            raise untranslatable("a column has no name")
        metadata = field.get("metadata") or {}
        here = (*path, name)
        field_id = ids.next(here, metadata)
        physical = metadata.get(PHYSICAL_NAME) if ids.mapped else None
        physical = physical if isinstance(physical, str) else name
        ftype, nested = _type(field.get("type"), here, ids, columns)
        columns[here] = Column(field_id, here, physical, ftype)
        fields.append(NestedField(field_id, name, ftype,
                                  required=not field.get("nullable", True)))
        names = [physical] if physical == name else [physical, name]
        entry: dict[str, Any] = {"field-id": field_id, "names": names}
        if nested:
            entry["fields"] = nested
        mapping.append(entry)
    return fields, mapping


def _type(node: Any, path: tuple[str, ...], ids: _Ids,
          columns: dict[tuple[str, ...], Column]
          ) -> tuple[IcebergType, list[dict[str, Any]]]:
    name = ".".join(path)
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return _PRIMITIVES[node], []
        if node.startswith("decimal(") and node.endswith(")"):
            precision, _, scale = node[8:-1].partition(",")
            return DecimalType(int(precision), int(scale)), []
        raise untranslatable(f"column {name} has type {node!r}, which Iceberg v2 cannot hold")
    if not isinstance(node, dict):
        raise untranslatable(f"column {name} has a malformed type")
    kind = node.get("type")
    if kind == "struct":
        fields, mapping = _struct(node, path, ids, columns)
        return StructType(*fields), mapping
    if kind == "array":
        element_id = ids.next((*path, "element"), None)
        element, nested = _type(node.get("elementType"), (*path, "element"), ids, columns)
        entry: dict[str, Any] = {"field-id": element_id, "names": ["element"]}
        if nested:
            entry["fields"] = nested
        return ListType(element_id, element,
                        element_required=not node.get("containsNull", True)), [entry]
    if kind == "map":
        key_id = ids.next((*path, "key"), None)
        value_id = ids.next((*path, "value"), None)
        key, key_nested = _type(node.get("keyType"), (*path, "key"), ids, columns)
        value, value_nested = _type(node.get("valueType"), (*path, "value"), ids, columns)
        entries: list[dict[str, Any]] = []
        for fid, label, nested in ((key_id, "key", key_nested),
                                   (value_id, "value", value_nested)):
            item: dict[str, Any] = {"field-id": fid, "names": [label]}
            if nested:
                item["fields"] = nested
            entries.append(item)
        return MapType(key_id, key, value_id, value,
                       value_required=not node.get("valueContainsNull", True)), entries
    raise untranslatable(f"column {name} has type {kind!r}, which Iceberg v2 cannot hold")


def partition_spec(translated: Translated, partition_columns: list[str],
                   spec_id: int = 0) -> PartitionSpec:
    """Identity partitions on Delta's partition columns (top-level, by logical name)."""
    fields = []
    for i, name in enumerate(partition_columns):
        column = translated.columns.get((name,))
        if column is None:
            raise untranslatable(f"partition column {name} is not in its schema")
        fields.append(PartitionField(source_id=column.field_id,
                                     field_id=PARTITION_FIELD_BASE + i,
                                     transform=IdentityTransform(), name=name))
    return PartitionSpec(*fields, spec_id=spec_id)


def partition_value(text: str | None, itype: IcebergType, column: str) -> Any:
    """Delta's partition value string as the Iceberg value a manifest holds."""
    if text is None:
        return None
    try:
        if isinstance(itype, StringType):
            return text
        if isinstance(itype, (IntegerType, LongType)):
            return int(text)
        if isinstance(itype, (FloatType, DoubleType)):
            return float(text)
        if isinstance(itype, BooleanType):
            return text.strip().lower() == "true"
        if isinstance(itype, DateType):
            return values.days(text)
        if isinstance(itype, DecimalType):
            return Decimal(text)
        if isinstance(itype, (TimestampType, TimestamptzType)):
            return values.micros(text)
        if isinstance(itype, BinaryType):
            return text.encode("utf-8")
    except ValueError:
        raise untranslatable(f"partition value {text!r} of column {column} is not a "
                             f"{itype}") from None
    raise untranslatable(f"partition column {column} has type {itype}")
