"""Delta's text values and Iceberg's numbers convert both ways (dates, timestamps), and a
Delta schema with every primitive type translates to Iceberg and back."""

from __future__ import annotations

import json

from pyiceberg.types import DateType, IntegerType, TimestamptzType

from spark_lakeversion.formats.delta.iceberg import values
from spark_lakeversion.formats.delta.iceberg.evolve import delta_type
from spark_lakeversion.formats.delta.iceberg.schema import partition_value, translate_schema


def test_dates_and_timestamps_round_trip() -> None:
    assert values.days("1970-01-02") == 1
    assert values.date_text(19_000) == "2022-01-08"
    moment = values.micros("2024-01-02 03:04:05.678901")
    assert moment == values.micros("2024-01-02T03:04:05.678901Z")
    assert values.timestamp_text(moment, stats=False) == "2024-01-02 03:04:05.678901"
    assert values.timestamp_text(moment, stats=True) == "2024-01-02T03:04:05.678Z"
    assert partition_value("2024-01-02 03:04:05.678901", TimestamptzType(), "t") == moment
    assert partition_value("2022-01-08", DateType(), "d") == 19_000
    assert partition_value(None, IntegerType(), "i") is None


def test_every_primitive_translates_and_comes_back() -> None:
    names = ["string", "long", "integer", "float", "double", "boolean", "binary", "date",
             "timestamp", "timestamp_ntz", "decimal(10,2)"]
    schema = {"type": "struct", "fields": [
        {"name": f"c{i}", "type": n, "nullable": True, "metadata": {}}
        for i, n in enumerate(names)]}
    translated = translate_schema(json.dumps(schema), {})
    assert [f.field_id for f in translated.schema.fields] == list(range(1, len(names) + 1))
    assert [delta_type(f.field_type, f.name) for f in translated.schema.fields] == names
