"""Immutable values the version store speaks in: keys, contents, commits, refs, merge results.

The store never interprets a table's content beyond its `type` and stable `id`: table
formats (Iceberg, Delta) own the rest of the fields, which keeps the store format-agnostic.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

from spark_lakeversion.errors import InvalidKey

#: separator of key elements inside the store's ordered key space; sorts before every
#: printable character so that `db` < `db/x` children < `db_other`
KEY_SEPARATOR = "\x00"


@dataclass(frozen=True, order=True)
class Key:
    """A table or namespace name: one or more elements, e.g. ``("db", "orders")``."""

    elements: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.elements:
            raise InvalidKey("a key needs at least one element")
        for element in self.elements:
            if not isinstance(element, str) or not element:
                raise InvalidKey(f"key elements must be non-empty strings: {self.elements!r}")
            if KEY_SEPARATOR in element or any(ord(c) < 0x20 for c in element):
                raise InvalidKey(f"key element {element!r} contains a control character")

    @classmethod
    def of(cls, value: KeyLike) -> Key:
        """Accept a Key, a dotted string ``"db.tbl"`` or a sequence of elements."""
        if isinstance(value, Key):
            return value
        if isinstance(value, str):
            return cls(tuple(value.split(".")))
        return cls(tuple(value))

    @classmethod
    def from_stored(cls, stored: str) -> Key:
        return cls(tuple(stored.split(KEY_SEPARATOR)))

    @property
    def stored(self) -> str:
        """The key's position in the store's ordered key space."""
        return KEY_SEPARATOR.join(self.elements)

    @property
    def name(self) -> str:
        return self.elements[-1]

    @property
    def namespace(self) -> tuple[str, ...]:
        return self.elements[:-1]

    @property
    def parent(self) -> Key | None:
        return Key(self.elements[:-1]) if len(self.elements) > 1 else None

    def __str__(self) -> str:
        return ".".join(self.elements)


KeyLike = Union[Key, str, tuple[str, ...], list[str]]


class ContentType(str, enum.Enum):
    NAMESPACE = "NAMESPACE"
    ICEBERG_TABLE = "ICEBERG_TABLE"
    DELTA_TABLE = "DELTA_TABLE"
    ICEBERG_VIEW = "ICEBERG_VIEW"


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


class RefType(str, enum.Enum):
    BRANCH = "BRANCH"
    TAG = "TAG"


@dataclass(frozen=True)
class Ref:
    name: str
    type: RefType
    head: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.value, "head": self.head}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ref:
        return cls(data["name"], RefType(data["type"]), data["head"])


@dataclass(frozen=True)
class ReflogEntry:
    """One movement of a ref: its new head (None: the ref was deleted) and when."""

    name: str
    head: str | None
    timestamp: datetime
    operation: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "head": self.head, "timestamp": self.timestamp.isoformat(),
                "operation": self.operation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReflogEntry:
        return cls(data["name"], data["head"], datetime.fromisoformat(data["timestamp"]),
                   data["operation"])


@dataclass(frozen=True)
class Commit:
    """An immutable commit; its id is the hash of everything below."""

    id: str
    parents: tuple[str, ...]
    author: str
    message: str
    timestamp: datetime
    properties: dict[str, str] = field(default_factory=dict, hash=False)
    root: str | None = None  # content tree root; internal, but handy for diagnostics

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parents": list(self.parents),
            "author": self.author,
            "message": self.message,
            "timestamp": self.timestamp.isoformat(),
            "properties": dict(self.properties),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Commit:
        return cls(data["id"], tuple(data["parents"]), data["author"], data["message"],
                   datetime.fromisoformat(data["timestamp"]), dict(data["properties"]))


@dataclass(frozen=True)
class ResolvedRef:
    """What a ref expression points at right now, and whether writes may go there."""

    expression: str
    commit_id: str
    branch: str | None  # set only when the expression is a plain branch name (writable)
    ref: Ref | None = None

    @property
    def writable(self) -> bool:
        return self.branch is not None


class DiffKind(str, enum.Enum):
    ADDED = "ADDED"
    REMOVED = "REMOVED"
    CHANGED = "CHANGED"


@dataclass(frozen=True)
class DiffEntry:
    key: Key
    kind: DiffKind
    from_content: Content | None
    to_content: Content | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": str(self.key),
            "elements": list(self.key.elements),
            "kind": self.kind.value,
            "from": self.from_content.to_dict() if self.from_content else None,
            "to": self.to_content.to_dict() if self.to_content else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffEntry:
        return cls(Key(tuple(data["elements"])), DiffKind(data["kind"]),
                   Content.from_dict(data["from"]) if data.get("from") else None,
                   Content.from_dict(data["to"]) if data.get("to") else None)


class MergeBehavior(str, enum.Enum):
    NORMAL = "NORMAL"  # three-way; both sides changed -> content merge or conflict
    FORCE = "FORCE"  # source wins
    DROP = "DROP"  # target wins (source change dropped)

    @classmethod
    def parse(cls, value: str | MergeBehavior) -> MergeBehavior:
        if isinstance(value, MergeBehavior):
            return value
        aliases = {"source-wins": cls.FORCE, "source_wins": cls.FORCE,
                   "target-wins": cls.DROP, "target_wins": cls.DROP}
        normalized = value.strip().lower()
        if normalized in aliases:
            return aliases[normalized]
        try:
            return cls(normalized.upper())
        except ValueError:
            from spark_lakeversion.errors import InvalidInput

            raise InvalidInput(
                f"unknown merge strategy {value!r}: use normal, source-wins or target-wins"
            ) from None


class ConflictType(str, enum.Enum):
    KEY_EXISTS = "KEY_EXISTS"  # both sides added the key, with different tables
    KEY_DOES_NOT_EXIST = "KEY_DOES_NOT_EXIST"  # one side changed what the other removed
    VALUE_DIFFERS = "VALUE_DIFFERS"  # both sides changed the same table differently
    CONTENT_ID_DIFFERS = "CONTENT_ID_DIFFERS"  # a side dropped and re-created the table
    # content-aware (Iceberg) merge conflicts
    UNSUPPORTED = "UNSUPPORTED"
    SCHEMA_CONFLICT = "SCHEMA_CONFLICT"
    SPEC_CONFLICT = "SPEC_CONFLICT"
    CONCURRENT_REWRITE = "CONCURRENT_REWRITE"
    CONCURRENT_DELETE = "CONCURRENT_DELETE"
    CONCURRENT_APPEND_IN_READ_PARTITION = "CONCURRENT_APPEND_IN_READ_PARTITION"
    EQUALITY_DELETE_CONFLICT = "EQUALITY_DELETE_CONFLICT"
    PROPERTY_CONFLICT = "PROPERTY_CONFLICT"
    # Delta merge conflicts, named after Delta's own exceptions
    DELTA_CONCURRENT_APPEND = "ConcurrentAppend"
    DELTA_CONCURRENT_DELETE_READ = "ConcurrentDeleteRead"
    DELTA_CONCURRENT_DELETE_DELETE = "ConcurrentDeleteDelete"
    DELTA_METADATA_CHANGED = "MetadataChanged"
    DELTA_PROTOCOL_CHANGED = "ProtocolChanged"


@dataclass(frozen=True)
class Conflict:
    type: ConflictType
    key: Key
    message: str
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": str(self.key), "type": self.type.value,
                                "message": self.message}
        if self.details:
            data["details"] = self.details
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conflict:
        return cls(ConflictType(data["type"]), Key.of(data["key"]), data["message"],
                   dict(data.get("details") or {}))


class MergeAction(str, enum.Enum):
    """What a merge did (or would do) with one key."""

    FAST_FORWARDED = "FAST_FORWARDED"  # the whole ref moved; key came along
    APPLIED = "APPLIED"  # source's value taken (only the source changed it, or FORCE)
    KEPT = "KEPT"  # target's value kept (DROP, or both sides made the same change)
    REPLAYED = "REPLAYED"  # both sides changed it; a content merger combined them
    CONFLICT = "CONFLICT"


@dataclass(frozen=True)
class KeyMergeDetail:
    key: Key
    action: MergeAction
    behavior: MergeBehavior
    conflict: Conflict | None = None
    statistics: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": str(self.key),
            "action": self.action.value,
            "behavior": self.behavior.value,
            "conflict": self.conflict.to_dict() if self.conflict else None,
        }
        if self.statistics:
            data["statistics"] = self.statistics
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyMergeDetail:
        conflict = data.get("conflict")
        return cls(Key.of(data["key"]), MergeAction(data["action"]),
                   MergeBehavior(data["behavior"]),
                   Conflict.from_dict(conflict) if conflict else None,
                   dict(data.get("statistics") or {}))


@dataclass(frozen=True)
class MergeResult:
    """Outcome of a merge, cherry-pick or revert; also what a dry run reports."""

    source: str
    target: str
    common_ancestor: str | None
    target_head_before: str
    new_head: str | None  # None for a dry run or a refused merge
    fast_forward: bool
    dry_run: bool
    details: tuple[KeyMergeDetail, ...]
    #: a gated merge's check reports (`store.gates.CheckReport.to_dict()`) and its preview
    checks: tuple[dict[str, Any], ...] = ()
    preview: str | None = None
    #: why no fast-forward happened although one was asked for: the target is protected
    #: (a merge into a protected branch always makes a merge commit)
    no_ff_reason: str | None = None

    @property
    def conflicts(self) -> list[Conflict]:
        return [d.conflict for d in self.details if d.conflict is not None]

    @property
    def successful(self) -> bool:
        return not self.conflicts

    def to_dict(self) -> dict[str, Any]:
        data = {
            "source": self.source,
            "target": self.target,
            "common_ancestor": self.common_ancestor,
            "target_head_before": self.target_head_before,
            "new_head": self.new_head,
            "fast_forward": self.fast_forward,
            "dry_run": self.dry_run,
            "successful": self.successful,
            "details": [d.to_dict() for d in self.details],
            "conflicts": [c.to_dict() for c in self.conflicts],
        }
        if self.preview is not None:  # a gated merge: its checks' reports and preview
            data["checks"] = list(self.checks)
            data["preview"] = self.preview
        if self.no_ff_reason is not None:
            data["no_ff_reason"] = self.no_ff_reason
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MergeResult:
        return cls(data["source"], data["target"], data.get("common_ancestor"),
                   data["target_head_before"], data.get("new_head"),
                   bool(data["fast_forward"]), bool(data["dry_run"]),
                   tuple(KeyMergeDetail.from_dict(d) for d in data["details"]),
                   tuple(c for c in data.get("checks") or () if isinstance(c, dict)),
                   data.get("preview"), data.get("no_ff_reason"))
