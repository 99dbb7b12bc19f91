"""The files every retained table state reaches, asked of each state's table format.

gc knows no format: each content type's `TableFormat.state_files` says which files a state
reaches and which directories its table owns. A table type no installed format knows is
kept whole (`ProtectedLocations`), never guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from spark_lakeversion.locations import AllowedRoots, normalize_path
from spark_lakeversion.model import Content, ContentType
from spark_lakeversion.tableformat.base import (
    ProtectedLocations,
    StateFiles,
    table_format,
)


class Reach:
    """One gc run's reachability: a shared set of reached files and one `StateFiles` per
    content type met, so every format reads each of its files at most once per run."""

    def __init__(self, roots: AllowedRoots | None,
                 io_properties: Mapping[str, str] | None = None) -> None:
        self.reachable: set[str] = set()
        self._roots = roots
        self._io_properties = dict(io_properties or {})
        self._files: dict[ContentType, StateFiles] = {}

    def files_for(self, content_type: ContentType) -> StateFiles:
        files = self._files.get(content_type)
        if files is None:
            fmt = table_format(content_type)
            files = (fmt.state_files(self.reachable, self._roots, self._io_properties)
                     if fmt is not None else ProtectedLocations(self.reachable))
            self._files[content_type] = files
        return files

    def add(self, content: Content) -> None:
        """Mark everything a retained table state reaches."""
        if content.is_table:
            self.files_for(content.type).add(content)

    @property
    def table_ids(self) -> set[str]:
        return set().union(*(f.table_ids for f in self._files.values()))

    def table_locations(self) -> dict[str, set[str]]:
        return _merged(f.table_locations for f in self._files.values())

    def protected_locations(self) -> dict[str, set[str]]:
        return _merged(f.protected_locations for f in self._files.values())

    def protected_roots(self) -> set[str]:
        return {normalize_path(location) for locations in self.protected_locations().values()
                for location in locations}

    def unreadable_tables(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for files in self._files.values():
            for table_id, errors in files.table_errors.items():
                if errors:
                    out.setdefault(table_id, {}).update(errors)
        return out

    def counters(self) -> dict[str, int]:
        """Every format's figures, summed, and the most reads of any one file."""
        total: dict[str, int] = {}
        for files in self._files.values():
            for name, value in files.counters().items():
                total[name] = total.get(name, 0) + value
        total["max_reads_per_file"] = max((max(f.reads.values(), default=0)
                                           for f in self._files.values()), default=0)
        return total


def _merged(maps: Iterable[Mapping[str, set[str]]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for mapping in maps:
        for table_id, locations in mapping.items():
            out.setdefault(table_id, set()).update(locations)
    return out
