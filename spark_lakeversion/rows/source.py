"""What a table format hands the row algorithms: the rows in the files live on exactly one
side of two table states, as Arrow record batches, and the count of the files it opened.

A format builds one `RowChanges` per (before, after) pair of states of one table
(`TableFormat.row_changes`). It decides from metadata alone which files differ; files both
sides share (with the same deletes applied) are never opened. Each `RowSide` reads its
files on demand, so a caller may read all of them (the row diff) or some (the row merge
reads the affected files of each side).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa

#: the column a side's batches carry, on request, with each row's partition label
#: (`FileRef.partition`): for per-partition counts; never part of a row's identity
PARTITION_COLUMN = "__lakeversion_partition"


def partition_labels(label: str, rows: int) -> pa.Array:
    """`PARTITION_COLUMN`'s values for a batch of one file: its label, `rows` times (built
    without a Python list)."""
    return pa.nulls(rows, pa.string()).fill_null(label)


#: files a side reads in parallel, ahead of the rows' consumer (Parquet decoding releases
#: the GIL); at most this many files' rows, plus the one being consumed, are held at once
READ_AHEAD = max(2, min(4, os.cpu_count() or 1))

_Item = TypeVar("_Item")
_Read = TypeVar("_Read")


def read_ahead(items: Sequence[_Item], read: Callable[[_Item], _Read],
               ahead: int = READ_AHEAD) -> Iterator[_Read]:
    """`read(item)` for each item, in order, with up to `ahead` of them read in parallel
    ahead of the caller (so a side's files decode while DuckDB counts the ones before).
    Stopping early cancels what has not started and waits for what has."""
    if len(items) < 2 or ahead < 2:
        yield from (read(item) for item in items)
        return
    todo = iter(items)
    with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="lakeversion-rows") as pool:
        pending: deque[Future[_Read]] = deque(pool.submit(read, item)
                                              for _, item in zip(range(ahead), todo))
        try:
            while pending:
                done = pending.popleft().result()
                following = next(todo, None)
                if following is not None:
                    pending.append(pool.submit(read, following))
                yield done
        finally:
            for future in pending:
                future.cancel()


class ReadCounter:
    """The data and delete files a reader opened, path -> times (thread-safe: formats read
    in parallel). A test proves from it that shared files were never opened."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.opened: Counter[str] = Counter()

    def record(self, path: str) -> None:
        with self._lock:
            self.opened[path] += 1

    @property
    def files(self) -> int:
        """How many distinct files were opened."""
        with self._lock:
            return len(self.opened)

    def paths(self) -> set[str]:
        with self._lock:
            return set(self.opened)


@dataclass(frozen=True)
class FileRef:
    """One data file whose rows differ between the sides, as its format names it.

    `deletes` are the delete files applied to it on its side (Iceberg position, equality
    and deletion-vector files); `partition` is its partition as a path label
    (``day=2024-01-01/region=eu``, empty when unpartitioned); `handle` is the format's own
    description of the file (not compared)."""

    path: str
    partition: str = ""
    records: int | None = None
    deletes: tuple[str, ...] = ()
    handle: object = field(default=None, compare=False, repr=False)


class RowSide(ABC):
    """One side's files live only there (or whose deletes differ), and how to read them.

    `arrow` is the side's own schema (its names, field ids in metadata), which an engine
    reading the files itself matches to the union schema (`rows.plan`); None: no rows."""

    arrow: pa.Schema | None = None

    def __init__(self, files: Sequence[FileRef]) -> None:
        self.files: tuple[FileRef, ...] = tuple(files)

    def plain_parquet(self) -> list[str] | None:
        """Local paths of all this side's files when an engine may read them itself as plain
        Parquet, columns matched by the field ids in `arrow` (no delete applies to any;
        `rows.native` still checks each file's field ids), each recorded as opened; None
        (the default): read them through `batches`."""
        return None

    @abstractmethod
    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        """The rows of `files` (default: all of this side's) with this side's deletes
        applied, each batch in the `RowChanges.schema` (columns matched by field id;
        a column the side lacks is null), plus `PARTITION_COLUMN` when `partition`."""


class EmptySide(RowSide):
    """A side with no rows to read (the table is absent there, or nothing changed)."""

    def __init__(self) -> None:
        super().__init__(())

    def batches(self, files: Sequence[FileRef] | None = None, *,
                partition: bool = False) -> Iterator[pa.RecordBatch]:
        return iter(())


@dataclass
class RowChanges:
    """The rows that differ between two states of one table, by files.

    `schema` is the union of both sides' columns matched by field id: the after side's
    columns (its names) first, then those only the before side has; each field carries its
    id in its metadata (`rows.schema.FIELD_ID`) when the format has ids. `identifier` names
    the row-identity columns (Iceberg identifier fields, Delta's
    ``lakeversion.identifier-fields`` property), empty when rows are a counted multiset.
    `skipped` counts the data files both sides share, skipped from metadata alone."""

    schema: pa.Schema
    identifier: tuple[str, ...]
    before: RowSide
    after: RowSide
    counter: ReadCounter
    skipped: int = 0

    @property
    def files_read(self) -> int:
        return self.counter.files

    def statistics(self) -> dict[str, int]:
        return {"files_before": len(self.before.files), "files_after": len(self.after.files),
                "files_skipped": self.skipped, "files_read": self.files_read}


__all__ = ["PARTITION_COLUMN", "READ_AHEAD", "EmptySide", "FileRef", "ReadCounter", "RowChanges",
           "RowSide", "partition_labels", "read_ahead"]
