"""The files gc lists and deletes: pyarrow file systems by scheme, and the path rules
(one spelling per file, checksum sidecars, containment) the listing is compared by."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from spark_lakeversion.formats.base import normalize_path


def owner_file(path: str) -> str:
    """The file a Hadoop checksum sidecar (``dir/.NAME.crc``) belongs to; else `path`.

    Spark's local writes leave one next to every file; it lives and dies with its file."""
    folder, _, name = path.rpartition("/")
    if name.startswith(".") and name.endswith(".crc") and len(name) > 5:
        return f"{folder}/{name[1:-4]}"
    return path


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class ListedFile:
    path: str  # normalized
    size: int
    mtime: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size,
                "mtime": self.mtime.isoformat() if self.mtime else None}


class FileSystems:
    """pyarrow file systems by scheme (and bucket), created once per run."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def resolve(self, uri: str) -> tuple[Any, str]:
        """(pyarrow FileSystem, path inside it) for a normalized URI."""
        from pyarrow import fs as pafs

        scheme, _, rest = uri.partition("://")
        if scheme == "file":
            key = "file"
            if key not in self._cache:
                self._cache[key] = pafs.LocalFileSystem()
            return self._cache[key], rest
        key = f"{scheme}://{rest.split('/', 1)[0]}"
        if key not in self._cache:
            self._cache[key] = pafs.FileSystem.from_uri(uri)[0]
        return self._cache[key], rest

    def list(self, root: str) -> Iterator[ListedFile]:
        """Every file under `root` (recursively); a missing root lists nothing."""
        from pyarrow import fs as pafs

        filesystem, path = self.resolve(root)
        scheme = root.partition("://")[0]
        selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
        for info in filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            mtime = info.mtime
            if mtime is not None and mtime.tzinfo is None:
                mtime = mtime.replace(tzinfo=timezone.utc)
            yield ListedFile(normalize_path(f"{scheme}://{info.path}"), int(info.size or 0),
                             mtime)

    def delete(self, uri: str) -> None:
        filesystem, path = self.resolve(uri)
        filesystem.delete_file(path)


def roots_to_list(roots: Iterable[str]) -> list[str]:
    """Distinct roots, dropping those inside another root (listed once, by the outer)."""
    out: list[str] = []
    for root in sorted(set(roots)):
        if not any(under(root, kept) for kept in out):
            out.append(root)
    return out
