"""Contents: the state of one key at one commit, and the operations of a commit.

The store never interprets a table's content beyond its `type` and stable `id`: table
formats (Iceberg, Delta) own the rest of the fields, which keeps the store format-agnostic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from spark_lakeversion.model.codes import Code
from spark_lakeversion.model.keys import Key


class ContentType(Code):
    """What a key holds: an open registry of codes (`model.codes`). The store knows only
    namespaces; each table format registers its own (``ICEBERG_TABLE`` and ``ICEBERG_VIEW``
    in `formats/iceberg/codes.py`, ``DELTA_TABLE`` in `formats/delta/codes.py`)."""

    #: the store's own structure (keys nest under namespaces; limits and the location index
    #: treat them apart), so the model registers it rather than a plugin
    NAMESPACE: ClassVar[ContentType]


ContentType.NAMESPACE = ContentType.register("NAMESPACE")


@dataclass(frozen=True)
class Content:
    """The state of one key at one commit: a format tag, a stable id and format fields.

    `id` survives every change of the table and differs when a table is dropped and
    re-created under the same name; merges use it to tell the two apart.
    Iceberg fields: ``metadata_location``, ``snapshot_id``, ``schema_id``, ``spec_id``,
    ``sort_order_id``. Delta: ``location``, ``version``, ``root``, ``writer``
    (`formats.delta.content`). Namespace: ``properties``.
    Iceberg view: ``metadata_location``, ``version_id``, ``location``.
    """

    type: ContentType
    id: str
    fields: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type.value, "id": self.id, **self.fields}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Content:
        rest = {k: v for k, v in data.items() if k not in ("type", "id")}
        return cls(ContentType(data["type"]), str(data["id"]), rest)

    def canonical(self) -> str:
        """Deterministic serialisation: equal contents have equal bytes (and hashes)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def with_fields(self, **changes: Any) -> Content:
        return Content(self.type, self.id, {**self.fields, **changes})

    @property
    def is_table(self) -> bool:
        """Anything but a namespace: a table or a view, which owns a location and files
        (the location index and gc treat both alike)."""
        return self.type is not ContentType.NAMESPACE


@dataclass(frozen=True)
class Put:
    key: Key
    content: Content


@dataclass(frozen=True)
class Delete:
    key: Key


Operation = Union[Put, Delete]
