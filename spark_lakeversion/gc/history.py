"""What the store retains right now, read only through the public `VersionStore`
interface (so a store of any kind, the HTTP client included, keeps reflog protection):

- every ref head (branches and tags);
- the heads the reflog gave existing refs within the window (`ref#<time>` stays readable);
- merge previews recorded within the window (`VersionStore.preview_commits`: a refused
  merge's preview stays readable for debugging);
- every commit reachable from those whose time is within the window (the walk stops, on
  each path, at the first older commit: `versioning.retention.walk_retained`, the same rule the
  store applies to refuse time travel past gc);
- the table states of those commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from spark_lakeversion.model import Commit, Content
from spark_lakeversion.store.objects import to_us
from spark_lakeversion.versioning import retention
from spark_lakeversion.versioning.interface import VersionStore


@dataclass
class History:
    """What the store retains right now: roots and every retained commit's table states."""

    heads: dict[str, str] = field(default_factory=dict)  # ref name -> head
    reflog_heads: set[str] = field(default_factory=set)
    commits: dict[str, Commit] = field(default_factory=dict)
    contents: dict[str, Content] = field(default_factory=dict)  # canonical -> table state
    keys: dict[str, set[str]] = field(default_factory=dict)  # table id -> keys it held
    listed: set[str] = field(default_factory=set)  # commits whose states are in `contents`

    def signature(self) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
        return tuple(sorted(self.heads.items())), frozenset(self.reflog_heads)


def reflog_heads(store: VersionStore, since: datetime, names: set[str]) -> set[str]:
    """Heads `ref#<time>` can resolve to for a time within the window, for the existing
    refs `names` (from the store's public reflog; the rule is `versioning.retention`'s)."""
    rows = ((e.name, e.head, to_us(e.timestamp)) for e in store.reflog(since))
    return retention.reflog_heads(rows, to_us(since), names)


def read_history(store: VersionStore, cutoff: datetime, history: History) -> None:
    """(Re)read refs and reflog, walk the retained commits, collect their table states.

    The walk is `spark_lakeversion.versioning.retention.walk_retained`, the same rule the store
    applies to refuse time travel past gc (`HistoryCollected`). Commits are immutable, so
    those already in `history` are not listed again; a commit with a retained parent costs
    one diff, not a full listing.
    """
    history.heads = {r.name: r.head for r in store.list_refs()}
    history.reflog_heads = reflog_heads(store, cutoff, set(history.heads))
    # merge previews (checked, published or refused) recorded within the history window
    # stay readable for debugging: they are roots like the reflog's heads
    history.reflog_heads |= set(store.preview_commits(cutoff))
    roots = set(history.heads.values()) | history.reflog_heads
    retention.walk_retained(roots, cutoff, store.get_commit, history.commits)
    # states: oldest first, so that a child's retained parent is listed before it
    pending = sorted((c for c in history.commits.values() if c.id not in history.listed),
                     key=lambda c: c.timestamp)
    for commit in pending:
        base = next((p for p in commit.parents if p in history.listed), None)
        if base is not None:
            states = [(str(d.key), d.to_content) for d in store.diff(base, commit.id)
                      if d.to_content is not None]
        else:
            states = [(str(k), c) for k, c in store.list_keys(commit.id)]
        for key, content in states:
            if content.is_table:
                history.contents.setdefault(content.canonical(), content)
                history.keys.setdefault(content.id, set()).add(key)
        history.listed.add(commit.id)
