"""What an immutable file says, parsed once per process.

Iceberg never rewrites a metadata file, manifest list or manifest in place, and a data
file is never changed once written: each change writes new files. So the parse of one can
be kept, and a row diff or a `changes.` check on states the server has read before does
not parse their metadata, manifest lists and Parquet footers again (about 5 ms of a 30 ms
check on the bench's table).

A file is known by its `identity`: a local file by its path, size and modification time
(a file a client rewrote in place anyway is parsed again), a remote one by its location
(a HEAD request would cost what the read does). Each `FileCache` is bounded by a weight
(the objects it keeps, as its user counts them), least recently used out first; what
does not fit is never kept. Values are shared between callers: only immutable values, or
values no caller changes, go in.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.locations import parse_location

V = TypeVar("V")

#: what a file is known by: (location,) or (location, size, mtime in ns)
Identity = tuple[str] | tuple[str, int, int]


def local_path(location: str) -> str | None:
    """The path of a local file (an absolute path or a `file:` URI, as
    `locations.parse_location` reads it), else None: another scheme, or a spelling that
    parser refuses (such a file is read, uncached, by its own reader)."""
    try:
        return parse_location(location).local_path
    except InvalidInput:
        return None


def identity(location: str) -> Identity | None:
    """The file's identity, or None (never cached: its reader reports what is wrong) when
    a local file cannot be found or the location is one `parse_location` refuses."""
    try:
        path = parse_location(location).local_path
    except InvalidInput:
        return None
    if path is None:
        return (location,)
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (location, found.st_size, found.st_mtime_ns)


class FileCache(Generic[V]):
    """A bounded, thread-safe least-recently-used map from a file's identity (plus what
    else its key needs) to what parsing it gave."""

    def __init__(self, max_weight: int) -> None:
        self.max_weight = max_weight
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._weight = 0
        _EVERY.add(self)

    def get(self, location: str, load: Callable[[], V], *extra: Hashable,
            weight: Callable[[V], int] = lambda _: 1) -> V:
        """The cached value for `location` (and `extra`), else `load()`, kept when it fits.
        Two callers missing at once both load; the last one's value is kept."""
        found = identity(location)
        if found is None:
            return load()
        key = (found, *extra)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        value = load()
        cost = max(1, int(weight(value)))
        if cost > self.max_weight:
            return value
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._items[key] = (value, cost)
            self._weight += cost
            while self._weight > self.max_weight:
                _, (_, dropped) = self._items.popitem(last=False)
                self._weight -= dropped
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._weight = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


#: every cache of the process, for `clear_all`
_EVERY: weakref.WeakSet[FileCache[Any]] = weakref.WeakSet()


def clear_all() -> None:
    """Empty every cache of the process (benchmarks: what a first read of new states
    costs)."""
    for cache in list(_EVERY):
        cache.clear()


__all__ = ["FileCache", "Identity", "clear_all", "identity", "local_path"]
