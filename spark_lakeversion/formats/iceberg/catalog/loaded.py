"""What a table load answers: its own module, so the table service and the append
committer it composes (`appends.py`) both name it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.table.metadata import TableMetadata


@dataclass(frozen=True)
class LoadedTable:
    """The spec's LoadTableResult: a table's metadata and where it is stored (None while a
    staged create has written nothing)."""

    metadata: TableMetadata
    metadata_location: str | None
