"""An Iceberg create request that asks for a Delta table (`CREATE TABLE ... USING delta`;
the Spark shim sends the provider as the table property `TABLE_FORMAT`): its schema and
identity partitions in Delta's terms. Delta partitions only by column values, so any other
transform is refused, as are the Iceberg-only choices a Delta table cannot keep."""

from __future__ import annotations

from typing import Any

from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform

from spark_lakeversion.formats.delta.iceberg.errors import Untranslatable

#: the table property naming the table format a create asks for
TABLE_FORMAT = "lakeversion.table-format"
DELTA = "delta"


def wants_delta(properties: dict[str, str]) -> bool:
    value = properties.get(TABLE_FORMAT)
    if value is None or value.lower() == "iceberg":
        return False
    if value.lower() != DELTA:
        raise Untranslatable(f"{TABLE_FORMAT}={value!r}: the catalog creates iceberg or "
                             "delta tables")
    return True


def delta_schema(schema: Schema, spec: PartitionSpec | None) -> tuple[Any, list[str]]:
    """The pyarrow schema deltalake creates the table with, and its partition columns."""
    import pyarrow as pa

    arrow = schema_to_pyarrow(schema, include_field_ids=False)
    arrow = pa.schema([f.remove_metadata() for f in arrow])
    partition_by: list[str] = []
    for field in (spec.fields if spec is not None else ()):
        if not isinstance(field.transform, IdentityTransform):
            raise Untranslatable(f"partition {field.name} uses the {field.transform} "
                                 "transform: a Delta table partitions by column values only "
                                 "(PARTITIONED BY (column))")
        column = schema.find_field(field.source_id)
        if schema.find_column_name(field.source_id) != column.name:
            raise Untranslatable(f"partition column {column.name} must be a top-level column")
        partition_by.append(column.name)
    return arrow, partition_by
