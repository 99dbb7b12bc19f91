"""Content mergers: how a table changed on *both* sides of a merge can still be merged.

The version-control layer's merge is format-agnostic: when both sides changed one key and the
behaviour is NORMAL, it asks the merger registered for that content type for a plan.
No merger registered (e.g. Delta today) means the table-level rule: VALUE_DIFFERS.

A plan is computed without writing anything (dry runs stop there); `apply()` writes
whatever the format needs (new manifests, metadata file) and returns the new content.
The engine re-plans if the target moved between planning and its compare-and-swap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.store.model import Conflict, Content, ContentType, Key


@dataclass(frozen=True)
class MergeContext:
    """What a content merger may need to know about the merge it is part of."""

    source: str  # ref expression as given
    source_commit: str
    target: str  # target branch
    target_commit: str
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"isolation_level": ...}


class ContentMergePlan(ABC):
    key: Key
    conflicts: list[Conflict]
    statistics: dict[str, Any]

    @abstractmethod
    def apply(self) -> Content:
        """Write the merged table state and return its new content value."""

    def discard(self) -> None:  # noqa: B027 - optional hook
        """Remove what `apply()` wrote, when its commit lost the race to the target."""


class ContentMerger(ABC):
    content_type: ContentType

    @abstractmethod
    def plan(self, key: Key, base: Content, target: Content, source: Content,
             context: MergeContext) -> ContentMergePlan:
        """Plan the merge of `source`'s net change since `base` onto `target`; write nothing."""

    def check_options(self, options: Mapping[str, Any]) -> None:  # noqa: B027 - optional
        """Refuse (`InvalidInput`) merge options this format reads but cannot honour."""


_REGISTRY: dict[ContentType, ContentMerger] = {}

#: mergers shipped with the package; each module registers itself on import. Loaded on
#: first use so that opening a store does not import pyiceberg.
BUILTIN_MERGERS = ("spark_lakeversion.formats.iceberg_merge",)
_builtins_loaded = False


def _load_builtin_mergers() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    import importlib

    for module in BUILTIN_MERGERS:
        try:
            importlib.import_module(module)
        except ImportError:  # the format's optional dependency is not installed
            continue


def register_content_merger(merger: ContentMerger) -> None:
    _REGISTRY[merger.content_type] = merger


def unregister_content_merger(content_type: ContentType) -> None:
    _REGISTRY.pop(content_type, None)


def content_merger_for(content_type: ContentType) -> ContentMerger | None:
    _load_builtin_mergers()
    return _REGISTRY.get(content_type)


def check_merger_options(options: Mapping[str, Any]) -> None:
    """Every content merger checks the options before a merge starts, so a bad option is
    refused whatever tables the merge touches (and nothing is written)."""
    if not options:
        return
    for content_type in ContentType:
        merger = content_merger_for(content_type)
        if merger is not None:
            merger.check_options(options)
