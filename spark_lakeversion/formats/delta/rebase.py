"""Rebase of a blind append through the Delta handle onto the branch's new log version.

An append reads nothing of the table, so under Delta's own optimistic-concurrency rule it
commutes with every commit that landed since it read the table (appends, deletes,
updates, merges, a new branch log) except one that changed the table's metadata (schema,
partitioning, properties: `MetadataChanged`) or protocol (`ProtocolChanged`). When an
append loses the race (the log version it wrote exists already, or the branch's table
state moved before its store commit), the handle writes it again on the table's state at
the new head, exactly as Delta's retry would, when `refusal` finds no reason not to.

"Between" is walked along logs: the new state's log back through each branch log's
version 0 (which copies its parent's protocol and metadata verbatim) to the log the
append read. A state that does not descend from the one the append read (a merge brought
another branch's state, the table was replaced) is never rebased onto. The table property
`lakeversion.rebase-appends` (shared with Iceberg tables) set to `false` turns it off.
"""

from __future__ import annotations

from collections.abc import Mapping

from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.formats.iceberg.rebase import REBASE_PROPERTY

#: the commitInfo key and store commit property of a rebased append: the state it read
REBASED = "lakeversion.rebased-from"
#: how many times one append is re-applied before its conflict is answered
MAX_ATTEMPTS = 20
#: how many branch logs the walk from the new state back to the read one crosses
MAX_LOGS = 100

IO = Mapping[str, str] | None


def enabled(state: DeltaState, io: IO = None) -> bool:
    """The table's own switch at `state` (`lakeversion.rebase-appends`, default on)."""
    configuration = log.open_table(state.location, state.version, io=io).metadata() \
        .configuration or {}
    return str(configuration.get(REBASE_PROPERTY, "true")).strip().lower() != "false"


def landed(base: DeltaState, new: DeltaState, io: IO = None) -> list[tuple[str, int]] | None:
    """The log versions (location, version) between `base` and `new`, oldest log last;
    None when `new` does not descend from `base`."""
    location, version = new.location, new.version
    between: list[tuple[str, int]] = []
    for _ in range(MAX_LOGS):
        if location == base.location:
            if version < base.version:
                return None
            return between + [(location, v) for v in range(base.version + 1, version + 1)]
        info = log.commit_info(0, location, io)
        params = info.get("operationParameters") or {}
        parent = str(params.get("parentLocation") or "").rstrip("/")
        if info.get("operation") != log.OP_BRANCH or not parent:
            return None
        try:
            parent_version = int(str(params.get("parentVersion")))
        except ValueError:
            return None
        between += [(location, v) for v in range(1, version + 1)]
        location, version = parent, parent_version
    return None


def refusal(base: DeltaState, new: DeltaState, io: IO = None) -> str | None:
    """None when an append that read `base` may be re-applied on `new` (Delta's rule for a
    blind append), else why not."""
    if new.table_id != base.table_id or new.root != base.root:
        return "the table was replaced"
    versions = landed(base, new, io)
    if versions is None:
        return (f"the table's state at the head ({new.location}@{new.version}) does not "
                f"descend from the one the append read ({base.location}@{base.version})")
    for location, version in versions:
        actions = log.commit_actions(location, version, io)
        if not actions:
            return f"version {version} of {location} cannot be read"
        for action in actions:
            if "metaData" in action or "protocol" in action:
                return (f"version {version} of {location} changed the table's "
                        f"{'metadata' if 'metaData' in action else 'protocol'}")
    if not enabled(new, io):
        return f"table property {REBASE_PROPERTY} is false"
    return None
