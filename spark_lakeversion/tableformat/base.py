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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from spark_lakeversion.errors import InvalidInput, UnsupportedTableFeature
from spark_lakeversion.model import (
    FORMATS_ENTRY_POINT_GROUP,
    ConflictType,
    Content,
    ContentType,
    Key,
)

if TYPE_CHECKING:
    from spark_lakeversion.locations import AllowedRoots
    from spark_lakeversion.rows.source import RowChanges
    from spark_lakeversion.tableformat.merger import ContentMerger

#: the entry-point group a format package declares its `TableFormat` factory in
ENTRY_POINT_GROUP = FORMATS_ENTRY_POINT_GROUP


class TableFormat(ABC):
    """One content type's behaviour. Subclasses override what their format supports.

    `content_type` and `conflict_types` are the format's own codes of the model's open
    vocabularies: loading the format registers them (`FormatRegistry`), so a plugin brings
    new types beside the built-in ones (or replaces a built-in format for its type)."""

    content_type: ContentType
    #: the conflicts this format's merger reports
    conflict_types: tuple[ConflictType, ...] = ()

    @abstractmethod
    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        """Check a content value a client hands in (locations under `roots`, files
        readable with the server's FileIO properties `io_properties`); return it,
        completed where the format derives fields, or raise `InvalidInput`."""

    def claimed_locations(self, content: Content, io_properties: Mapping[str, str]
                          ) -> dict[str, str]:
        """Every directory a validated state writes into, by the name a refusal shows:
        none may overlap another table's (`formats.validate.check_claims`). The default
        is the content's `location`, which the store indexes."""
        location = content.fields.get("location")
        return {"location": location} if isinstance(location, str) and location else {}

    def added_files(self, base: Content | None, content: Content,
                    io_properties: Mapping[str, str]) -> Iterator[tuple[str, str]]:
        """The files a commit putting the validated `content` over `base` (the state at
        its key, or None) adds, as (what, path), lazily: gc's epoch fence (`gc.fence`)
        checks each exists and postdates gc's cutoff, and stops at the first problem. A
        file that cannot be read raises. The default adds none: gc never deletes under a
        format it cannot follow (`ProtectedLocations`)."""
        return iter(())

    def merger(self) -> ContentMerger | None:
        """The content merger for states changed on both sides (`formats.merger`), or
        None: then only the table-level rule applies."""
        return None

    def restore(self, key: Key, current: Content, wanted: Content, branch: str,
                io_properties: Mapping[str, str] | None = None, *, preview: bool = False
                ) -> tuple[Content, Callable[[], None]]:
        """The content a rollback or revert of `key` on `branch` puts to bring the table
        from `current` back to `wanted` (same table id), and how to undo what that wrote
        if the commit then fails (files opened with the store's `io_properties`). The
        default puts `wanted` as it is (Iceberg: the old metadata file); a format whose
        log versions are sequential (Delta) writes a new version instead. A `preview` (a
        gated revert's, on no ref until its checks pass) must leave what plain readers of
        the table read unchanged, as `ContentMergePlan.apply(preview=True)`."""
        return wanted, nothing

    def publish_preview(self, key: Key, target: Content | None, preview: Content,
                        branch: str, io_properties: Mapping[str, str]
                        ) -> tuple[Content, Callable[[], None]]:
        """The content the gate publishes on `branch` for a checked `preview` state of
        `key` over the branch's `target` state, and the undo of what that wrote (called
        when the publish then fails). Called inside the publishing transaction, once the
        branch is known to be still at the head the preview was planned on. A format that
        wrote the preview beside the table's own storage writes the same change there now
        (Delta: the next version of the table's own log), so the published state differs
        from the checked one only in where it is stored. The default publishes `preview`
        as it is (Iceberg: its metadata file). An ungated merge's new states are
        published through it too (`preview` is then the state the merge brings), so a
        format whose branch owns the table's own storage keeps owning it (Delta: main's
        root log takes a branch log's state as its next version). `target` is None when
        the branch does not have the table yet (Delta: main takes a table born on a
        branch log as version 0 of the table's root log); a cherry-pick, revert or
        rollback giving a branch a table it does not have publishes it through here too
        (`versioning.picks.restored`)."""
        return preview, nothing

    def republishes(self, key: Key, target: Content | None, state: Content, branch: str,
                    io_properties: Mapping[str, str]) -> str | None:
        """Why `publish_preview` would write `state` anew for `branch` over `target` (no
        ref may then fast-forward onto it: a merge commit points at what it writes), or
        None (the default: every state is published as it is). `target` None: the branch
        does not have the table yet."""
        return None

    def reassigns(self, key: Key, current: Content | None, state: Content, branch: str,
                  io_properties: Mapping[str, str]) -> str | None:
        """Why `branch` may not simply point at `state` (a reset moving it from `current`,
        None when the branch lacks the table): publishing `state` there would write (Delta:
        main's root log takes it as a new version, or its newest version is another state,
        which plain readers of the table would go on reading). None (the default): every
        state may be pointed at as it is."""
        return None

    def row_changes(self, before: Content | None, after: Content | None,
                    io_properties: Mapping[str, str]) -> RowChanges:
        """The rows that differ between two states of one table (`before` or `after` None:
        the table is absent on that side), by files: the files live on exactly one side
        (or whose deletes differ) read on demand through the server's FileIO properties
        `io_properties`, never by table properties; shared files skipped from metadata
        alone (`spark_lakeversion.rows`). A feature the format cannot read correctly raises
        `UnsupportedTableFeature` naming it. The default reads no rows."""
        raise UnsupportedTableFeature(f"{self.content_type.value} tables have no row reader")

    def state_files(self, reachable: set[str], roots: AllowedRoots | None,
                    io_properties: Mapping[str, str]) -> StateFiles:
        """For gc, one run's view of the files this format's table states reach, adding
        them to the run's shared `reachable` set. The default cannot read a state: it
        protects every location its states name, so gc never deletes under them."""
        return ProtectedLocations(reachable)


def nothing() -> None:
    """Undo of a restore that wrote nothing."""


class StateFiles(ABC):
    """gc's question to a format: which files do these table states reach, and which
    directories does each table own? One instance per gc run, so reads are shared."""

    def __init__(self, reachable: set[str]) -> None:
        self.reachable = reachable  # normalized paths, shared by every format of the run
        self.table_ids: set[str] = set()
        #: table id -> the locations its states name and gc may list (as written there)
        self.table_locations: dict[str, set[str]] = {}
        #: table id -> locations gc must never delete under (it cannot tell what they reach)
        self.protected_locations: dict[str, set[str]] = {}
        #: table id -> {path: why it could not be read}: gc leaves such a table alone
        self.table_errors: dict[str, dict[str, str]] = {}
        self.reads: Counter[str] = Counter()  # normalized path -> times read

    @abstractmethod
    def add(self, content: Content) -> None:
        """Mark everything a retained table state reaches."""

    def followed(self, content: Content) -> bool:
        """Whether `add` has seen this state (its errors are then known already)."""
        return False

    def dropped(self, content: Content, known: bool) -> tuple[list[str] | None, dict[str, str]]:
        """For a state no retained commit holds any more (a dropped table, a deleted
        branch): the locations its table owned (None when unknown or `known` to gc
        already) and {path: error} for what could not be read. The default protects it."""
        self.add(content)
        return None, {}

    def counters(self) -> dict[str, int]:
        """Figures for `GcReport` (e.g. metadata files and manifests read)."""
        return {}

    def mark(self, path: str) -> None:
        """`path` (normalized) is reachable."""
        self.reachable.add(path)


class ProtectedLocations(StateFiles):
    """For a format whose files gc cannot follow (a third party's, say): every location a state
    names is kept whole; the table still claims its directory against overlaps."""

    def add(self, content: Content) -> None:
        self.table_ids.add(content.id)
        location = content.fields.get("location")
        if isinstance(location, str) and location:
            self.protected_locations.setdefault(content.id, set()).add(location)


_BUILTIN = "spark_lakeversion."


class FormatRegistry:
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
                fmt = _registered(factory() if callable(factory) else factory)
                if ep.value.startswith(_BUILTIN):
                    self._formats.setdefault(fmt.content_type, fmt)
                else:  # an installed plugin replaces our format for its content type
                    self._formats[fmt.content_type] = fmt
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
        self._formats[_registered(fmt).content_type] = fmt

    def unregister(self, content_type: ContentType) -> None:
        self._load()
        self._formats.pop(content_type, None)


def _registered(fmt: TableFormat) -> TableFormat:
    """`fmt`, its codes registered (a plugin may spell them as plain strings)."""
    fmt.content_type = ContentType.register(fmt.content_type)
    fmt.conflict_types = tuple(ConflictType.register(c) for c in fmt.conflict_types)
    return fmt


FORMATS = FormatRegistry()


def table_format(content_type: ContentType) -> TableFormat | None:
    """The installed format for `content_type`, or None."""
    return FORMATS.get(content_type)


__all__ = ["ENTRY_POINT_GROUP", "FORMATS", "FormatRegistry", "ProtectedLocations", "StateFiles",
           "TableFormat", "nothing", "table_format"]
