"""The files gc lists and deletes: S3 through boto3 (paginated listing, batched
deletes), other schemes through pyarrow file systems, all opened with the server's FileIO
properties; and the path rules (one spelling per file, checksum sidecars, containment) the
listing is compared by."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import FileIOConfig, boto3_s3_client, pyarrow_filesystem
from spark_lakeversion.locations import normalize_path


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
    """Listing, looking up and deleting files by normalized URI: S3 through boto3
    (`S3Store`: paginated listing, batched deletes), everything else through pyarrow file
    systems; each created once per run, with the server's FileIO properties."""

    def __init__(self, io_properties: Mapping[str, str] | None = None) -> None:
        self.io = FileIOConfig.of(io_properties)
        self._cache: dict[str, Any] = {}
        self._s3: S3Store | None = None

    def _object_store(self, uri: str) -> S3Store | None:
        if not uri.startswith("s3://"):
            return None
        if self._s3 is None:
            self._s3 = S3Store(self.io)
        return self._s3

    def resolve(self, uri: str) -> tuple[Any, str]:
        """(pyarrow FileSystem, path inside it) for a normalized URI that is not on S3."""
        scheme, _, rest = uri.partition("://")
        key = "file" if scheme == "file" else f"{scheme}://{rest.split('/', 1)[0]}"
        if key not in self._cache:
            self._cache[key] = pyarrow_filesystem(uri, self.io)
        return self._cache[key], rest

    def list(self, root: str) -> Iterator[ListedFile]:
        """Every file under `root` (recursively); a missing root lists nothing."""
        store = self._object_store(root)
        if store is not None:
            yield from store.list(root)
            return
        from pyarrow import fs as pafs

        filesystem, path = self.resolve(root)
        scheme = root.partition("://")[0]
        selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
        for info in filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            yield ListedFile(normalize_path(f"{scheme}://{info.path}"), int(info.size or 0),
                             _utc(info.mtime))

    def info(self, uri: str) -> ListedFile | None:
        """One file's size and modification time; None when it does not exist."""
        store = self._object_store(uri)
        if store is not None:
            return store.info(uri)
        from pyarrow import fs as pafs

        filesystem, path = self.resolve(uri)
        found = filesystem.get_file_info(path)
        if found.type == pafs.FileType.NotFound:
            return None
        return ListedFile(uri, int(found.size or 0), _utc(found.mtime))

    def delete_many(self, uris: Sequence[str]) -> dict[str, str | None]:
        """Delete every file of `uris` (S3: in batches); {uri: None if deleted, else why
        not}. A file already gone is left out (nothing was reclaimed by us)."""
        outcome: dict[str, str | None] = {}
        on_s3 = [u for u in uris if self._object_store(u) is not None]
        if on_s3:
            assert self._s3 is not None
            outcome.update(self._s3.delete_many(on_s3))
        for uri in uris:
            if uri in outcome or self._object_store(uri) is not None:
                continue
            filesystem, path = self.resolve(uri)
            try:
                filesystem.delete_file(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                outcome[uri] = f"{type(exc).__name__}: {exc}"
                continue
            outcome[uri] = None
        return outcome


def _utc(mtime: datetime | None) -> datetime | None:
    if mtime is not None and mtime.tzinfo is None:
        return mtime.replace(tzinfo=timezone.utc)
    return mtime


#: S3's limit of keys per DeleteObjects request
S3_DELETE_BATCH = 1000


class S3Store:
    """S3 (and S3-compatible stores: MinIO, moto) through boto3, its client built from the
    FileIO properties by `spark_lakeversion.fileio.boto3_s3_client`."""

    def __init__(self, io: FileIOConfig) -> None:
        try:
            self.client = boto3_s3_client(io)
        except ImportError:
            raise InvalidInput("gc on S3 needs boto3: pip install spark-lakeversion[s3]"
                               ) from None

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        """(bucket, key) of a normalized `s3://bucket/key` URI."""
        bucket, _, key = uri[len("s3://"):].partition("/")
        return bucket, key

    def list(self, root: str) -> Iterator[ListedFile]:
        bucket, key = self.split(root)
        prefix = key.rstrip("/") + "/" if key else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                       Prefix=prefix)
        for page in pages:
            for item in page.get("Contents") or ():
                yield ListedFile(normalize_path(f"s3://{bucket}/{item['Key']}"),
                                 int(item.get("Size") or 0), _utc(item.get("LastModified")))

    def info(self, uri: str) -> ListedFile | None:
        from botocore.exceptions import ClientError

        bucket, key = self.split(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ListedFile(uri, int(head.get("ContentLength") or 0),
                          _utc(head.get("LastModified")))

    def delete_many(self, uris: Sequence[str]) -> dict[str, str | None]:
        outcome: dict[str, str | None] = {}
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            by_bucket.setdefault(self.split(uri)[0], []).append(uri)
        for bucket, items in by_bucket.items():
            for start in range(0, len(items), S3_DELETE_BATCH):
                batch = items[start:start + S3_DELETE_BATCH]
                keys = {self.split(u)[1]: u for u in batch}
                try:
                    answer = self.client.delete_objects(
                        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys],
                                               "Quiet": False})
                except Exception as exc:  # noqa: BLE001 - the whole batch failed: say so
                    for uri in batch:
                        outcome[uri] = f"{type(exc).__name__}: {exc}"
                    continue
                for item in answer.get("Deleted") or ():
                    if item.get("Key") in keys:
                        outcome[keys[item["Key"]]] = None
                for item in answer.get("Errors") or ():
                    if item.get("Key") in keys:
                        outcome[keys[item["Key"]]] = (f"{item.get('Code')}: "
                                                      f"{item.get('Message')}")
        return outcome


def roots_to_list(roots: Iterable[str]) -> list[str]:
    """Distinct roots, dropping those inside another root (listed once, by the outer)."""
    out: list[str] = []
    for root in sorted(set(roots)):
        if not any(under(root, kept) for kept in out):
            out.append(root)
    return out
