"""Which table owns which directories: every table id's locations strictly parsed, under
the allowed roots and overlapping no other table id's, and its history readable; a table
failing any check is skipped whole and reported. The last look before a delete too."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.gc.files import under
from spark_lakeversion.gc.history import History
from spark_lakeversion.gc.reach import Reach
from spark_lakeversion.locations import AllowedRoots, Location, parse_location


def _too_broad(location: Location) -> bool:
    """A file-system root or a bare bucket: too much else may live there."""
    return location.path == "/"


@dataclass
class Ownership:
    """Which table id owns which directories, and the tables gc must leave alone."""

    owned: dict[str, list[Location]] = field(default_factory=dict)  # table id -> locations
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)  # table id -> entry
    _by_uri: dict[str, str] | None = field(default=None, repr=False)

    def owner_of(self, path: str) -> str | None:
        """The table id owning the directory `path` (a listed, normalized URI) lies in;
        looked up by the path's ancestors, so it costs its depth, not the table count."""
        if self._by_uri is None:
            self._by_uri = {loc.uri: table_id for table_id, locs in self.owned.items()
                            for loc in locs}
        by_uri = self._by_uri
        candidate = path
        while True:
            owner = by_uri.get(candidate)
            if owner is not None:
                return owner
            parent, sep, _ = candidate.rpartition("/")
            if not sep or parent.endswith("://"):
                return None  # a file-system or bucket root is never owned
            candidate = parent


def assess(reach: Reach, roots: AllowedRoots, history: History,
            dropped: Mapping[str, set[str]], content_errors: Mapping[str, dict[str, str]]
            ) -> Ownership:
    """Every table id's locations checked: strictly parsed, under the allowed roots, not
    overlapping (equal to, containing or inside) a location of another table id, and its
    history readable. A table failing any check is skipped whole: none of its locations is
    listed, and its readable files still count as reachable. A location outside the roots
    claims nothing (so one bad content naming the warehouse's parent does not stop gc for
    every table); locations inside the roots overlap whatever else they contain."""
    protected = reach.protected_locations()  # they claim their directories, never listed
    named: dict[str, set[str]] = {}
    for source in (reach.table_locations(), dropped, protected):
        for table_id, texts in source.items():
            named.setdefault(table_id, set()).update(texts)
    reasons: dict[str, list[str]] = {}
    parsed: dict[str, list[Location]] = {}
    for table_id, table_texts in named.items():
        for text in sorted(table_texts):
            try:
                location = parse_location(text, "table location")
            except InvalidInput as exc:
                reasons.setdefault(table_id, []).append(exc.message)
                continue
            if not roots.contains(location):
                # void: never listed, and no claim on the directories inside it (its
                # readable files still count as reachable wherever they lie)
                reasons.setdefault(table_id, []).append(
                    f"location {location} is outside the allowed locations "
                    f"({roots.describe()})")
                continue
            parsed.setdefault(table_id, []).append(location)
            if _too_broad(location):
                reasons.setdefault(table_id, []).append(
                    f"location {location} is a file-system or bucket root")
    by_location: dict[Location, set[str]] = {}
    for table_id, locations in parsed.items():
        for location in locations:
            by_location.setdefault(location, set()).add(table_id)
    for table_id, locations in parsed.items():
        for location in locations:
            ancestor: Location | None = location
            while ancestor is not None:
                for other in sorted(by_location.get(ancestor, set()) - {table_id}):
                    for a, b, loc, other_loc in ((table_id, other, location, ancestor),
                                                 (other, table_id, ancestor, location)):
                        reasons.setdefault(a, []).append(
                            f"location {loc} overlaps location {other_loc} of table {b}")
                ancestor = _parent(ancestor)
    for table_id, errors in list(reach.unreadable_tables().items()) + list(content_errors.items()):
        for path, error in sorted(errors.items()):
            reasons.setdefault(table_id, []).append(f"cannot read {path}: {error}")
    ownership = Ownership()
    for table_id, locations in parsed.items():
        if table_id not in reasons and table_id not in protected:
            ownership.owned[table_id] = locations
    for table_id, why in reasons.items():
        ownership.skipped[table_id] = {
            "content_id": table_id,
            "keys": sorted(history.keys.get(table_id, ())),
            "locations": sorted(named.get(table_id, ())),
            "reasons": list(dict.fromkeys(why)),
        }
    return ownership


def _parent(location: Location) -> Location | None:
    if location.path == "/":
        return None
    parent = location.path.rpartition("/")[0] or "/"
    return Location(location.scheme, location.authority, parent)


def unsafe_to_delete(path: str, ownership: Ownership) -> str | None:
    """Last look before a local delete: the file must still lie, once symlinks are
    resolved, inside the directory of the one table that owns it."""
    owner = ownership.owner_of(path)
    if owner is None:
        return "no longer under the location of exactly one table"
    if not path.startswith("file://"):
        return None
    local = path[len("file://"):]
    if os.path.islink(local):
        return None  # deleting a link removes the link, never its target
    real_dir = os.path.realpath(os.path.dirname(local))
    for location in ownership.owned[owner]:
        if location.scheme == "file" and under(local, location.path):
            real_root = os.path.realpath(location.path)
            if real_dir == real_root or real_dir.startswith(real_root.rstrip("/") + "/"):
                return None
    return "its directory resolves (through a symbolic link) outside its table location"
