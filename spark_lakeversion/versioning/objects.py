"""Cached reads of immutable objects over any storage: tree nodes, contents and commits
never change once written, so a bounded LRU in front of the storage is always right."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from spark_lakeversion.errors import CommitNotFound, InvalidRefExpression
from spark_lakeversion.model import Commit, Content, Key
from spark_lakeversion.store.spi import Storage
from spark_lakeversion.versioning.names import is_commit_hash
from spark_lakeversion.versioning.three_way import Changes
from spark_lakeversion.versioning.tree import Node, Trees


class LruCache(OrderedDict[str, Any]):
    """A small bounded cache for immutable objects."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.lock = threading.Lock()

    def get_value(self, key: str) -> Any:
        with self.lock:
            value = self.get(key)
            if value is not None:
                self.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        with self.lock:
            self[key] = value
            if len(self) > self.capacity:
                self.popitem(last=False)


class Objects:
    """The immutable objects of one storage, read through caches."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.nodes = LruCache(200_000)
        self.contents = LruCache(200_000)
        self.commits = LruCache(100_000)
        self.trees = Trees(self.node)

    def node(self, h: str) -> Node:
        node = self.nodes.get_value(h)
        if node is None:
            data = self.storage.node(h)
            if data is None:
                raise CommitNotFound(f"tree node {h} is missing from the store")
            node = Node.decode(data)
            self.nodes.put(h, node)
        return node  # type: ignore[no-any-return]

    def load_contents(self, hashes: Iterable[str]) -> dict[str, Content]:
        found: dict[str, Content] = {}
        missing = []
        for h in set(hashes):
            cached = self.contents.get_value(h)
            if cached is None:
                missing.append(h)
            else:
                found[h] = cached
        if missing:
            for h, content in self.storage.contents(missing).items():
                self.contents.put(h, content)
                found[h] = content
        return found

    def commit_and_generation(self, commit_id: str) -> tuple[Commit, int]:
        cached = self.commits.get_value(commit_id)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        loaded = self.storage.commit(commit_id)
        if loaded is None:
            raise CommitNotFound(f"commit {commit_id} not found")
        self.commits.put(commit_id, loaded)
        return loaded

    def written(self, commit: Commit) -> None:
        """`commit` was just stored (its transaction committed; not before, or a rolled
        back commit would seem to exist): the next commit on its branch reads it as its
        parent, from here. Its parents are read (cached) for its generation."""
        if commit.parents:
            generation = 1 + max(self.generation(p) for p in commit.parents)
            self.commits.put(commit.id, (commit, generation))

    def commit(self, commit_id: str) -> Commit:
        return self.commit_and_generation(commit_id)[0]

    def generation(self, commit_id: str) -> int:
        return self.commit_and_generation(commit_id)[1]

    def expand_hash(self, text: str) -> str:
        """The full id of a commit id or unambiguous >=8-hex prefix."""
        if not isinstance(text, str) or not is_commit_hash(text):
            raise InvalidRefExpression(f"{text!r} is not a commit id (at least 8 hex digits)")
        if len(text) == 40:
            self.commit_and_generation(text)  # CommitNotFound if absent; cached if not
            return text
        found = self.storage.commits_with_prefix(text, 2)
        if not found:
            raise CommitNotFound(f"no commit id starts with {text}")
        if len(found) > 1:
            raise InvalidRefExpression(f"commit prefix {text} is ambiguous: use more digits")
        return found[0]

    def root_of(self, commit_id: str) -> str | None:
        return self.commit(commit_id).root

    def values(self, root: str | None, keys: Iterable[Key]) -> dict[Key, Content]:
        by_stored = {k.stored: k for k in keys}
        hashes = self.trees.get_many(root, sorted(by_stored))
        contents = self.load_contents(hashes.values())
        return {by_stored[s]: contents[h] for s, h in hashes.items()}

    def changes(self, from_root: str | None, to_root: str | None) -> Changes:
        raw = list(self.trees.diff(from_root, to_root))
        contents = self.load_contents(h for _, a, b in raw for h in (a, b) if h)
        return {Key.from_stored(k): (contents[a] if a else None, contents[b] if b else None)
                for k, a, b in raw}
