"""Branch logs: the first write of a branch to a Delta table starts the branch's own log.

Version 0 of a branch log copies the parent state's `protocol` and `metaData` and lists
the parent's live files by the path `log.add_path` gives (relative, ``../../p=a/...`` for
the table's own files), so no data file is copied; branch creation stays
O(1) and only this first write pays O(live files) in log bytes (with a checkpoint when the
list is long). A state is written in place only by the branch owning its log, and only
while it is that log's newest version; anything else (a state brought over by a merge or a
rollback, a log that moved on) starts a fresh branch log.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.locations import parse_location

#: the directory under a table's root that holds its branch logs (hidden from vacuum)
BRANCHES_DIR = "_branches"
#: a branch log listing more files than this gets a checkpoint in the same step
CHECKPOINT_FILES = 1000


@dataclass
class WritableLog:
    """Where a write goes: the state to write on and the log files this request created."""

    state: DeltaState
    created: list[str] = field(default_factory=list)
    forked: bool = False
    log_bytes: int = 0


def owns(state: DeltaState, branch: str, io: Mapping[str, str] | None = None) -> bool:
    return state.writer == branch and log.latest_version(state.location, io) == state.version


def branch_dir(root: str, branch: str) -> str:
    """`<root>/_branches/<branch>-<random>`: a fresh directory for every branch log."""
    segment = re.sub(r"[^A-Za-z0-9_.-]", "_", branch)[:60].strip(".") or "branch"
    return parse_location(root).child(BRANCHES_DIR,
                                      f"{segment}-{uuid.uuid4().hex[:12]}").uri


def start_branch_log(state: DeltaState, branch: str,
                     files: log.LogState | None = None, *,
                     io: Mapping[str, str] | None = None) -> WritableLog:
    """Write version 0 of a new branch log for `branch` holding `state`'s table."""
    parent = files or log.read_state(state.location, state.version, io=io)
    log.check_protocol(parent.protocol, state.location)
    location = branch_dir(state.root, branch)
    actions = [{"protocol": parent.protocol}, {"metaData": parent.metadata},
               *(f.add_action(log_location=location, data_change=False)
                 for f in parent.files.values())]
    uri = log.write_commit(location, 0, actions, log.OP_BRANCH,
                           {"parentLocation": state.location,
                            "parentVersion": str(state.version)}, blind_append=True, io=io)
    if uri is None:  # a random directory: someone else cannot have written it
        raise ConflictError(f"branch log {location} exists already")
    created = [uri]
    if len(parent.files) > CHECKPOINT_FILES:
        log.open_table(location, 0, io=io).create_checkpoint()
        created.extend(u for _, u in sorted(log.log_files(location, io)) if u != uri)
        created.append(f"{log.log_dir(location)}/_last_checkpoint")
    forked = DeltaState(state.table_id, location, 0, state.root, branch)
    return WritableLog(forked, created, True, sum(storage.size(u, io) for u in created))


def writable(state: DeltaState, branch: str, io: Mapping[str, str] | None = None
             ) -> WritableLog:
    """`state` when `branch` may write on its log in place, else a new branch log."""
    if owns(state, branch, io):
        return WritableLog(state)
    return start_branch_log(state, branch, io=io)
