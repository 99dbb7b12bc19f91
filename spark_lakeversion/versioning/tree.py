"""A content-addressed, history-independent ordered key tree (a prolly tree).

Why this shape: a branch is just a pointer to a commit, a commit points at one tree root,
and trees share every unchanged node. So creating a branch copies nothing, a commit
rewrites only the O(depth) nodes on the paths of the keys it touches, and two trees are
diffed by skipping every node they share.

Chunk boundaries depend only on the keys (a key ends its chunk at level L when a hash of
`(L, key)` is 0 modulo the fan-out), so the same key set always gives the same tree, no
matter the order of edits. That is what makes "skip shared nodes" diffs cheap between
any two trees, not only between a tree and its direct edit.

Leaves map keys to *content hashes* (values live out-of-line in a content table), which
keeps nodes small; internal nodes map each child's last key to the child's hash.

It belongs to the version-control layer, not to storage: chunking, lookups, edits and
diffs are algorithms; a storage only keeps each node as opaque bytes under its hash.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from spark_lakeversion.store.objects import digest

#: expected entries per node; boundaries are hash-chosen, so sizes vary around it
FANOUT = 32

Entry = tuple[str, str]  # (key, content hash) in leaves, (last key, child hash) above


@dataclass(frozen=True)
class Node:
    level: int
    keys: tuple[str, ...]
    values: tuple[str, ...]

    @property
    def last_key(self) -> str:
        return self.keys[-1]

    def entries(self) -> list[Entry]:
        return list(zip(self.keys, self.values))

    def encode(self) -> bytes:
        return json.dumps([self.level, self.keys, self.values],
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Node:
        level, keys, values = json.loads(data)
        return cls(level, tuple(keys), tuple(values))


@lru_cache(maxsize=1 << 18)
def _is_boundary(key: str, level: int) -> bool:
    h = hashlib.blake2b(key.encode(), digest_size=4, salt=level.to_bytes(16, "little"))
    return int.from_bytes(h.digest(), "little") % FANOUT == 0


class TreeWriter:
    """Collects nodes created by edits; the store persists them before moving a ref."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.encoded: dict[str, bytes] = {}  # what gets stored, encoded exactly once

    def write(self, node: Node) -> str:
        data = node.encode()
        h = digest(data)
        self.nodes[h] = node
        self.encoded[h] = data
        return h


class Trees:
    """Operations over trees whose nodes come from `load` (a cached store lookup)."""

    def __init__(self, load: Callable[[str], Node]) -> None:
        self._load = load

    def load(self, h: str, writer: TreeWriter | None = None) -> Node:
        if writer is not None and h in writer.nodes:
            return writer.nodes[h]
        return self._load(h)

    # ---- reads ------------------------------------------------------------------------
    def _descend(self, root: tuple[str, Node], key: str, level: int,
                 strict: bool = False) -> tuple[str, Node] | None:
        """The node at `level` whose key range holds `key` (`strict`: first one after it)."""
        h, node = root
        while node.level > level:
            idx = (bisect_right if strict else bisect_left)(node.keys, key)
            if idx == len(node.keys):
                if strict:
                    return None
                idx -= 1
            h = node.values[idx]
            node = self.load(h)
        if strict and node.keys[-1] <= key:
            return None
        return h, node

    def get_many(self, root: str | None, keys: Iterable[str]) -> dict[str, str]:
        if root is None:
            return {}
        top = (root, self.load(root))
        found: dict[str, str] = {}
        for key in keys:
            located = self._descend(top, key, 0)
            assert located is not None
            leaf = located[1]
            idx = bisect_left(leaf.keys, key)
            if idx < len(leaf.keys) and leaf.keys[idx] == key:
                found[key] = leaf.values[idx]
        return found

    def items(self, root: str | None, lo: str = "", hi: str | None = None) -> Iterator[Entry]:
        """Entries with lo <= key < hi, in key order, visiting only overlapping nodes."""
        if root is None:
            return
        yield from self._items(self.load(root), lo, hi)

    def _items(self, node: Node, lo: str, hi: str | None) -> Iterator[Entry]:
        if node.level == 0:
            start = bisect_left(node.keys, lo)
            for key, value in zip(node.keys[start:], node.values[start:]):
                if hi is not None and key >= hi:
                    return
                yield key, value
            return
        start = bisect_left(node.keys, lo)  # first child whose last key >= lo
        for idx in range(start, len(node.keys)):
            yield from self._items(self.load(node.values[idx]), lo, hi)
            if hi is not None and node.keys[idx] >= hi:
                return

    def diff(self, a: str | None, b: str | None) -> Iterator[tuple[str, str | None, str | None]]:
        """(key, value in a, value in b) for every key whose value differs, in key order.

        Nodes present in both trees hold the same keys with the same values and, since
        each key lives in exactly one node per level, can be dropped from both sides;
        only what remains is expanded. Cost follows the number of differing nodes.
        """
        front_a = [a] if a else []
        front_b = [b] if b else []
        while True:
            shared = set(front_a) & set(front_b)
            nodes_a = [(h, self.load(h)) for h in front_a if h not in shared]
            nodes_b = [(h, self.load(h)) for h in front_b if h not in shared]
            top = max((n.level for _, n in nodes_a + nodes_b), default=0)
            if top == 0:
                break
            front_a = self._expand(nodes_a, top)
            front_b = self._expand(nodes_b, top)
        left: dict[str, str] = {}
        for _, n in nodes_a:
            left.update(zip(n.keys, n.values))
        right: dict[str, str] = {}
        for _, n in nodes_b:
            right.update(zip(n.keys, n.values))
        # the differing leaves share most of their entries: sort only what differs
        differing = set(left.items() ^ right.items())
        for key in sorted({k for k, _ in differing}):
            yield key, left.get(key), right.get(key)

    @staticmethod
    def _expand(nodes: list[tuple[str, Node]], level: int) -> list[str]:
        """Replace the nodes at `level` by their children; keep lower nodes as they are."""
        out: list[str] = []
        for h, node in nodes:
            if node.level == level:
                out.extend(node.values)
            else:
                out.append(h)
        return out

    # ---- writes -----------------------------------------------------------------------
    def build(self, entries: Iterable[Entry], writer: TreeWriter) -> str | None:
        """The canonical tree of sorted, unique entries (bulk load: one pass per level)."""
        level_entries = list(entries)
        level = 0
        while True:
            if not level_entries:
                return None
            chunks, tail = _chunk(level_entries, level)
            if tail:
                chunks.append(tail)
            if len(chunks) == 1:
                return self._collapse(writer.write(_node(level, chunks[0])), writer)
            level_entries = [(c[-1][0], writer.write(_node(level, c))) for c in chunks]
            level += 1

    def apply(self, root: str | None, changes: Mapping[str, str | None],
              writer: TreeWriter) -> str | None:
        """New root after setting (value) or deleting (None) each key in `changes`.

        Works level by level on the old tree: re-chunk only the nodes holding changed
        keys (pulling in a successor when a chunk lost its boundary key), then hand the
        parent level the changed (last key -> child) entries.
        """
        if not changes:
            return root
        if root is None:
            return self.build(sorted((k, v) for k, v in changes.items() if v is not None),
                              writer)
        root_node = self.load(root)
        level = 0
        level_changes: dict[str, str | None] = dict(changes)
        while level < root_node.level:
            level_changes = self._apply_level((root, root_node), level, level_changes, writer)
            level += 1
        merged = _merge_entries(root_node.entries(), level_changes)
        chunks, tail = _chunk(merged, level)
        if tail:
            chunks.append(tail)
        if not chunks:
            return None
        if len(chunks) == 1:
            return self._collapse(writer.write(_node(level, chunks[0])), writer)
        return self._build_from(level, chunks, writer)

    def _build_from(self, level: int, chunks: list[list[Entry]], writer: TreeWriter) -> str | None:
        entries = [(c[-1][0], writer.write(_node(level, c))) for c in chunks]
        while True:
            level += 1
            chunks, tail = _chunk(entries, level)
            if tail:
                chunks.append(tail)
            if len(chunks) == 1:
                return writer.write(_node(level, chunks[0]))
            entries = [(c[-1][0], writer.write(_node(level, c))) for c in chunks]

    def _collapse(self, h: str, writer: TreeWriter) -> str:
        """A root with one child is not canonical: the child is the root."""
        node = self.load(h, writer)
        while node.level > 0 and len(node.keys) == 1:
            h = node.values[0]
            node = self.load(h, writer)
        return h

    def _apply_level(self, root: tuple[str, Node], level: int,
                     changes: dict[str, str | None],
                     writer: TreeWriter) -> dict[str, str | None]:
        by_node: dict[str, list[str]] = {}
        nodes: dict[str, Node] = {}
        for key in changes:
            located = self._descend(root, key, level)
            assert located is not None
            h, node = located
            nodes[h] = node
            by_node.setdefault(h, []).append(key)
        ordered = sorted(nodes.items(), key=lambda item: item[1].last_key)
        position = {h: i for i, (h, _) in enumerate(ordered)}
        parent_changes: dict[str, str | None] = {}
        consumed: set[str] = set()
        for h, node in ordered:
            if h in consumed:
                continue
            buffer = _merge_entries(node.entries(), {k: changes[k] for k in by_node[h]})
            parent_changes.setdefault(node.last_key, None)
            current = node
            while True:
                chunks, tail = _chunk(buffer, level)
                for chunk in chunks:
                    parent_changes[chunk[-1][0]] = writer.write(_node(level, chunk))
                if not tail:
                    break
                located = self._descend(root, current.last_key, level, strict=True)
                if located is None:
                    parent_changes[tail[-1][0]] = writer.write(_node(level, tail))
                    break
                succ_hash, successor = located
                succ_entries = successor.entries()
                if succ_hash in position:
                    consumed.add(succ_hash)
                    succ_entries = _merge_entries(
                        succ_entries, {k: changes[k] for k in by_node[succ_hash]})
                parent_changes.setdefault(successor.last_key, None)
                buffer = tail + succ_entries
                current = successor
        return parent_changes


def _node(level: int, entries: list[Entry]) -> Node:
    return Node(level, tuple(k for k, _ in entries), tuple(v for _, v in entries))


def _merge_entries(entries: list[Entry], changes: Mapping[str, str | None]) -> list[Entry]:
    if not changes:
        return entries
    if len(changes) > 8:
        merged = dict(entries)
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return sorted(merged.items())
    out = list(entries)  # few changes: edit in place by binary search
    for key, value in changes.items():
        idx = bisect_left(out, (key,))
        present = idx < len(out) and out[idx][0] == key
        if value is None:
            if present:
                del out[idx]
        elif present:
            out[idx] = (key, value)
        else:
            out.insert(idx, (key, value))
    return out


def _chunk(entries: list[Entry], level: int) -> tuple[list[list[Entry]], list[Entry]]:
    """Split into chunks that end at boundary keys, plus the unterminated tail."""
    chunks: list[list[Entry]] = []
    start = 0
    for i, (key, _) in enumerate(entries):
        if _is_boundary(key, level):
            chunks.append(entries[start:i + 1])
            start = i + 1
    return chunks, entries[start:]
