"""How immutable objects are addressed: a commit's id and a content value's hash are the
hash of their canonical bytes, so equal objects are stored once and never change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone

from spark_lakeversion.model import Commit, Content

#: the time of every store's initial commit, so all stores share its id
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def digest(data: bytes) -> str:
    """The 40-hex address of stored bytes (tree nodes, content values)."""
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def content_hash(content: Content) -> tuple[str, str]:
    """(address, canonical JSON) of a content value."""
    data = content.canonical()
    return digest(data.encode()), data


def to_us(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def from_us(ts_us: int) -> datetime:
    return datetime.fromtimestamp(ts_us / 1_000_000, tz=timezone.utc)


def make_commit(parents: tuple[str, ...], root: str | None, author: str, message: str,
                ts_us: int, properties: Mapping[str, str]) -> Commit:
    """A commit whose id is the hash of everything it holds."""
    payload = json.dumps([list(parents), root, author, message, ts_us,
                          sorted(properties.items())], separators=(",", ":"))
    commit_id = hashlib.blake2b(payload.encode(), digest_size=20).hexdigest()
    return Commit(commit_id, parents, author, message, from_us(ts_us), dict(properties), root)


def root_commit() -> Commit:
    """The parentless, empty initial commit every store starts from."""
    return make_commit((), None, "lakeversion", "initial commit", to_us(EPOCH), {})


__all__ = ["EPOCH", "content_hash", "digest", "from_us", "make_commit", "root_commit",
           "to_us"]
