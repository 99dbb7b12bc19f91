"""The table-format plugin interface: what the version-control layer, the server and gc may
ask of a content type, and the one registry that finds the formats.

The store and the version-control layer know contents only as `Content(type, id, fields)`.
Everything format-specific (what a valid value is, how two changed states merge, which files
a state reaches) sits behind `TableFormat`, one object per content type. Formats are found
through the entry-point group `spark_lakeversion.formats` (ours are declared in
pyproject.toml), so a third-party package adds one without touching this package; loading is
lazy, so opening a store imports no format library (pyiceberg, deltalake).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.store.model import Content, ContentType, Key

if TYPE_CHECKING:
    from spark_lakeversion.locations import AllowedRoots

#: the entry-point group a format package declares its `TableFormat` factory in
ENTRY_POINT_GROUP = "spark_lakeversion.formats"


class TableFormat(ABC):
    """One content type's behaviour. Subclasses override what their format supports."""

    content_type: ContentType

    @abstractmethod
    def validate(self, key: Key, content: Content, roots: AllowedRoots) -> Content:
        """Check a content value a client hands in (locations under `roots`, files
        readable); return it, completed where the format derives fields, or raise
        `InvalidInput`."""

    def describe(self, content: Content) -> dict[str, Any]:
        """A short JSON-able description, for logs and commit properties."""
        return dict(content.fields)

    def merger(self) -> Any | None:
        """The content merger for states changed on both sides (a
        `ContentMerger`), or None: then only the table-level rule applies."""
        return None


class _Registry:
    """Formats by content type, loaded from the entry points on first use."""

    def __init__(self) -> None:
        self._formats: dict[ContentType, TableFormat] = {}
        self._loaded = False
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    factory = ep.load()
                except ImportError:  # the format's optional dependency is not installed
                    continue
                fmt = factory() if callable(factory) else factory
                self._formats.setdefault(fmt.content_type, fmt)
            self._loaded = True

    def get(self, content_type: ContentType) -> TableFormat | None:
        self._load()
        return self._formats.get(content_type)

    def require(self, content_type: ContentType) -> TableFormat:
        fmt = self.get(content_type)
        if fmt is None:
            raise InvalidInput(f"no table format is installed for {content_type.value} "
                               "contents")
        return fmt

    def all(self) -> Iterable[TableFormat]:
        self._load()
        return list(self._formats.values())

    def register(self, fmt: TableFormat) -> None:
        """Add or replace a format by hand (tests, embedding applications)."""
        self._load()
        self._formats[fmt.content_type] = fmt

    def unregister(self, content_type: ContentType) -> None:
        self._load()
        self._formats.pop(content_type, None)


FORMATS = _Registry()


def table_format(content_type: ContentType) -> TableFormat | None:
    """The installed format for `content_type`, or None."""
    return FORMATS.get(content_type)


__all__ = ["ENTRY_POINT_GROUP", "FORMATS", "TableFormat", "table_format"]
