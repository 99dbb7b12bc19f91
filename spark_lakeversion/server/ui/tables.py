"""What the UI shows of one table state: its kind, schema (field ids, identifier fields),
partition spec, properties, snapshots or Delta versions, a page of its rows, and the
schema diff between two states. Files are opened with the server's FileIO properties,
never a client's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import Content, ContentType

#: rows one preview page shows, and the furthest a preview pages
PREVIEW_ROWS = 50
MAX_PREVIEW_OFFSET = 100_000
#: longest cell text shown
MAX_CELL = 200


@dataclass
class Field:
    field_id: int | None
    name: str
    type: str
    required: bool
    identifier: bool = False


@dataclass
class TableView:
    kind: str  # Iceberg, Iceberg view, Delta, namespace, or the content type's name
    fields: list[Field] = field(default_factory=list)
    partition: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    #: (id or version, time, operation, summary)
    snapshots: list[tuple[str, str, str, str]] = field(default_factory=list)
    view_sql: str | None = None


def kind_of(content: Content) -> str:
    name = content.type.value if hasattr(content.type, "value") else str(content.type)
    return {"ICEBERG_TABLE": "Iceberg", "ICEBERG_VIEW": "Iceberg view",
            "DELTA_TABLE": "Delta", "NAMESPACE": "namespace"}.get(name, name)


def _ms(value: int | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL] + "…"


def describe(content: Content, io: Mapping[str, str]) -> TableView:
    kind = kind_of(content)
    if kind == "Iceberg":
        return _iceberg(content, io)
    if kind == "Delta":
        return _delta(content, io)
    if kind == "Iceberg view":
        return _view(content, io)
    props = content.fields.get("properties")
    return TableView(kind, properties={str(k): str(v) for k, v in (
        props.items() if isinstance(props, dict) else ())})


def _iceberg(content: Content, io: Mapping[str, str]) -> TableView:
    from spark_lakeversion.formats.iceberg.content import read_metadata

    metadata = read_metadata(str(content.fields["metadata_location"]), io)
    schema = metadata.schema()
    ids = set(schema.identifier_field_ids)
    fields = [Field(f.field_id, f.name, str(f.field_type), f.required, f.field_id in ids)
              for f in schema.fields]
    spec = metadata.spec()
    partition = [f"{p.name}: {p.transform}({schema.find_column_name(p.source_id)})"
                 for p in spec.fields]
    snapshots = [(str(s.snapshot_id), _ms(s.timestamp_ms),
                  str(s.summary.operation.value) if s.summary else "",
                  ", ".join(f"{k}={v}" for k, v in sorted((s.summary.additional_properties
                                                           if s.summary else {}).items())
                            if k.startswith(("added-records", "deleted-records",
                                             "total-records"))))
                 for s in reversed(metadata.snapshots)]
    return TableView("Iceberg", fields, partition, dict(metadata.properties), snapshots)


def _view(content: Content, io: Mapping[str, str]) -> TableView:
    import json

    from spark_lakeversion.fileio import pyiceberg_file_io

    location = str(content.fields.get("metadata_location", ""))
    try:
        data = json.loads(pyiceberg_file_io(location, io).new_input(location).open().read())
    except Exception:  # noqa: BLE001 - an unreadable view file is shown, not raised
        return TableView("Iceberg view")
    version: dict[str, Any] = next((v for v in data.get("versions", [])
                    if v.get("version-id") == data.get("current-version-id")), {})
    sql = "; ".join(r.get("sql", "") for r in version.get("representations", []))
    schema: dict[str, Any] = next((s for s in data.get("schemas", [])
                   if s.get("schema-id") == version.get("schema-id")), {})
    fields = [Field(f.get("id"), str(f.get("name")), str(f.get("type")),
                    bool(f.get("required"))) for f in schema.get("fields", [])]
    return TableView("Iceberg view", fields, properties=dict(data.get("properties") or {}),
                     view_sql=sql)


def _delta(content: Content, io: Mapping[str, str]) -> TableView:
    from spark_lakeversion.formats.delta.content import DeltaState
    from spark_lakeversion.formats.delta.log import open_table

    state = DeltaState.of(content)
    table = open_table(state.location, state.version, io=io)
    schema = table.schema()
    fields = [Field(None, f.name, str(getattr(f.type, "type", f.type)), not f.nullable)
              for f in schema.fields]
    history = table.history(limit=50)
    versions = [(str(h.get("version", "")), _ms(h.get("timestamp")),
                 str(h.get("operation", "")),
                 ", ".join(f"{k}={v}" for k, v in sorted(
                     (h.get("operationMetrics") or {}).items())
                     if k in ("numOutputRows", "numAddedFiles", "numRemovedFiles")))
                for h in history]
    return TableView("Delta", fields, list(table.metadata().partition_columns),
                     dict(table.metadata().configuration), versions)


def preview(content: Content, io: Mapping[str, str], offset: int
            ) -> tuple[list[str], list[list[str]], bool]:
    """(columns, rows as text, whether more follow) of rows offset..offset+PREVIEW_ROWS."""
    if not 0 <= offset <= MAX_PREVIEW_OFFSET:
        raise InvalidInput(f"the preview pages up to row {MAX_PREVIEW_OFFSET:,}")
    kind = kind_of(content)
    want = offset + PREVIEW_ROWS + 1
    if kind == "Iceberg":
        from pyiceberg.table import StaticTable

        table = StaticTable.from_metadata(str(content.fields["metadata_location"]),
                                          properties=dict(io))
        arrow = table.scan(limit=want).to_arrow()
    elif kind == "Delta":
        from spark_lakeversion.formats.delta.content import DeltaState
        from spark_lakeversion.formats.delta.log import open_table

        state = DeltaState.of(content)
        reader = open_table(state.location, state.version, io=io).to_pyarrow_dataset()
        arrow = reader.head(want)
    else:
        return [], [], False
    window = arrow.slice(offset, PREVIEW_ROWS)
    columns = list(window.column_names)
    rows = [[cell(row[c]) for c in columns] for row in window.to_pylist()]
    return columns, rows, arrow.num_rows > offset + PREVIEW_ROWS


def schema_diff(before: TableView | None, after: TableView | None
                ) -> list[tuple[str, str, str, str]]:
    """(change, field, before, after) per field, matched by field id (by name for Delta)."""
    def by_id(view: TableView | None) -> dict[Any, Field]:
        return {} if view is None else {
            (f.field_id if f.field_id is not None else f.name): f for f in view.fields}

    old, new = by_id(before), by_id(after)
    changes: list[tuple[str, str, str, str]] = []
    for k in sorted(set(old) | set(new), key=str):
        o, n = old.get(k), new.get(k)
        if o is None and n is not None:
            changes.append(("added", n.name, "", n.type))
        elif n is None and o is not None:
            changes.append(("dropped", o.name, o.type, ""))
        elif o is not None and n is not None and (o.name, o.type, o.required) != \
                (n.name, n.type, n.required):
            changes.append(("changed", n.name if o.name == n.name else f"{o.name} → {n.name}",
                            f"{o.type}{' required' if o.required else ''}",
                            f"{n.type}{' required' if n.required else ''}"))
    return changes


def is_table(content: Content) -> bool:
    return content.type is not ContentType.NAMESPACE
