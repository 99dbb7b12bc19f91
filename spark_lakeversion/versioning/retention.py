"""The one rule for which commits gc retains, shared by gc's walk and the version-control
layer's `HistoryCollected` check, so the two can never disagree.

Retained history = the roots (every ref head, plus the heads the reflog gave existing refs
within the window) and every commit reachable from a root whose time is within the window;
on each path the walk stops at the first older commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping, Sequence
from datetime import datetime

from spark_lakeversion.errors import HistoryCollected
from spark_lakeversion.model import Commit, GcState
from spark_lakeversion.store.objects import to_us
from spark_lakeversion.store.spi import Storage, StorageWriter
from spark_lakeversion.versioning.objects import Objects


def walk_retained(roots: Iterable[str], cutoff: datetime, load: Callable[[str], Commit],
                  retained: MutableMapping[str, Commit], *, target: str | None = None,
                  skip: Callable[[str], bool] | None = None) -> bool:
    """Add to `retained` every commit gc's walk retains from `roots` with history `cutoff`.

    Commits already in `retained` are taken as walked (commits are immutable). With
    `target`, stop as soon as it is retained and answer whether it is; `skip(commit_id)`
    may prune parents that cannot lead to the target.
    """
    stack = []
    for root in roots:
        if root not in retained:
            retained[root] = load(root)
            stack.append(root)
    if target is not None and target in retained:
        return True
    while stack:
        commit = retained[stack.pop()]
        for parent in commit.parents:
            if parent in retained or (skip is not None and skip(parent)):
                continue
            parent_commit = load(parent)
            if parent_commit.timestamp >= cutoff:
                retained[parent] = parent_commit
                if parent == target:
                    return True
                stack.append(parent)
    return target is not None and target in retained


def reflog_heads(rows: Iterable[tuple[str, str | None, int]], since_us: int,
                 names: set[str]) -> set[str]:
    """Heads `ref#<time>` can resolve to for a time within the window, for the existing
    refs `names`; `rows` are (name, head, time in µs) in reflog order."""
    heads: set[str] = set()
    before: dict[str, str | None] = {}
    for name, head, ts_us in rows:
        if name not in names:
            continue
        if ts_us < since_us:
            before[name] = head  # the entry in force when the window opens
        elif head:
            heads.add(head)
    heads.update(h for h in before.values() if h)
    return heads


def require_retained(state: GcState, commit_ids: Sequence[str],
                     load: Callable[[str], tuple[Commit, int]],
                     read_heads: Callable[[], dict[str, str]],
                     read_reflog: Callable[[], list[tuple[str, str | None, int]]]) -> None:
    """`HistoryCollected` unless gc's walk retains every commit of `commit_ids`, given
    gc's `state` and how to read the ref heads and the reflog (as of that state)."""
    if state.retained_since is None:
        return  # gc never ran for real: nothing was collected
    since = state.retained_since
    heads: dict[str, str] | None = None
    for commit_id in commit_ids:
        commit, generation = load(commit_id)
        if not state.may_have_collected(commit.timestamp):
            continue
        if heads is None:
            heads = read_heads()
        if commit_id in heads.values():
            continue
        reflog = reflog_heads(read_reflog(), to_us(since), set(heads))
        if commit_id in reflog:
            continue

        def below(candidate: str, floor: int = generation) -> bool:
            return load(candidate)[1] < floor  # cannot lead to the commit

        if walk_retained(set(heads.values()) | reflog, since, lambda c: load(c)[0], {},
                         target=commit_id, skip=below):
            continue
        raise HistoryCollected(
            f"commit {commit_id[:12]} ({commit.timestamp.isoformat()}) is outside gc's "
            f"retained history (the commits a ref reaches back to {since.isoformat()}; gc "
            f"last ran at {state.started.isoformat() if state.started else '?'}), so its "
            "files may have been deleted: it cannot be restored, merged, cherry-picked or "
            "reverted; use a ref head or a more recent commit")


class Retention:
    """gc's retained-history rule as the writes of the version-control layer ask it."""

    def __init__(self, storage: Storage, objects: Objects) -> None:
        self.storage = storage
        self.objects = objects

    def require(self, tx: StorageWriter | None, commit_ids: Sequence[str]) -> None:
        """`HistoryCollected` unless gc's walk retains every commit of `commit_ids`.

        In a write transaction (`tx`), gc's state is held, so no gc run can begin until the
        caller's ref move is committed (and then that run sees it)."""
        if not commit_ids:
            return
        load = self.objects.commit_and_generation
        if tx is not None:
            require_retained(tx.hold_gc_state(), commit_ids, load, tx.heads, tx.reflog_rows)
            return
        with self.storage.reading() as reader:
            state = reader.gc_state()
        require_retained(state, commit_ids, load, self.read_heads, self.read_reflog)

    def read_heads(self) -> dict[str, str]:
        with self.storage.reading() as reader:
            return reader.heads()

    def read_reflog(self) -> list[tuple[str, str | None, int]]:
        with self.storage.reading() as reader:
            return reader.reflog_rows()


__all__ = ["Retention", "reflog_heads", "require_retained", "walk_retained"]
