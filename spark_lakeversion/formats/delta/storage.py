"""The few file operations our own Delta log writes need, on local files and on S3, opened
with the server's FileIO properties (`spark_lakeversion.fileio`): read, list one directory,
put-if-absent (a version someone else wrote first is a lost race, never overwritten),
write a new data file, size, and remove what this request created.

On S3 put-if-absent is a conditional put (`If-None-Match: *`), which S3 and moto honour
atomically, as delta-rs's own S3 commits do. Other schemes are refused: delta-rs writes
them, our log writes do not.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import S3_SCHEMES, FileIOConfig, boto3_s3_client
from spark_lakeversion.locations import normalize_path

_clients_lock = threading.Lock()
_clients: dict[tuple[tuple[str, str], ...], Any] = {}


def _s3(io: Mapping[str, str] | None) -> Any:
    """One boto3 client per FileIO configuration (building one costs tens of ms)."""
    key = FileIOConfig.of(io).cache_key
    with _clients_lock:
        client = _clients.get(key)
    if client is None:
        client = boto3_s3_client(io)
        with _clients_lock:
            client = _clients.setdefault(key, client)
    return client


def _where(uri: str) -> tuple[str, str, str]:
    """(scheme, bucket or "", path or key) of an unencoded URI the format built (a log
    file, or a data file a log names: lenient, as `normalize_path` is)."""
    scheme, _, rest = normalize_path(uri).partition("://")
    if scheme == "file":
        return "file", "", rest
    if scheme in S3_SCHEMES:
        bucket, _, key = rest.partition("/")
        return "s3", bucket, key
    raise InvalidInput(f"Delta logs are written on local files and S3 only, not at {uri}")


def _missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def read_bytes(uri: str, io: Mapping[str, str] | None) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    scheme, bucket, path = _where(uri)
    if scheme == "file":
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
    try:
        body: bytes = _s3(io).get_object(Bucket=bucket, Key=path)["Body"].read()
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError
        if _missing(exc):
            return None
        raise
    return body


def list_names(directory: str, io: Mapping[str, str] | None) -> list[str]:
    """The names of the files directly in `directory` (empty when it does not exist)."""
    scheme, bucket, path = _where(directory)
    if scheme == "file":
        try:
            return [n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n))]
        except FileNotFoundError:
            return []
    prefix = path.rstrip("/") + "/"
    pages = _s3(io).get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/")
    return [item["Key"][len(prefix):] for page in pages for item in page.get("Contents") or ()]


def put_if_absent(uri: str, data: bytes, io: Mapping[str, str] | None) -> bool:
    """Create `uri` holding `data` unless it exists: False when it did (a lost race)."""
    scheme, bucket, path = _where(uri)
    if scheme == "file":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True
    try:
        _s3(io).put_object(Bucket=bucket, Key=path, Body=data, IfNoneMatch="*")
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError
        response = getattr(exc, "response", None) or {}
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in (409, 412) or response.get("Error", {}).get("Code") in (
                "PreconditionFailed", "ConditionalRequestConflict"):
            return False
        raise
    return True


def size(uri: str, io: Mapping[str, str] | None) -> int:
    scheme, bucket, path = _where(uri)
    if scheme == "file":
        return os.path.getsize(path)
    return int(_s3(io).head_object(Bucket=bucket, Key=path)["ContentLength"])


def remove(uri: str, io: Mapping[str, str] | None) -> None:
    """Remove a file this request created (absent already: nothing to do)."""
    scheme, bucket, path = _where(uri)
    if scheme == "file":
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        return
    _s3(io).delete_object(Bucket=bucket, Key=path)


def filesystem(uri: str, io: Mapping[str, str] | None) -> tuple[Any, str]:
    """The pyarrow file system for `uri` and the path it takes (new data files)."""
    from spark_lakeversion.fileio import pyarrow_filesystem

    scheme, bucket, path = _where(uri)
    return pyarrow_filesystem(uri, io), path if scheme == "file" else f"{bucket}/{path}"
