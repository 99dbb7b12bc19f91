"""Branch logs: the first write of a branch to a Delta table starts the branch's own log.

Version 0 of a branch log copies the parent state's `protocol` and `metaData` and lists
the parent's live files by absolute URI, so no data file is copied; branch creation stays
O(1) and only this first write pays O(live files) in log bytes (with a checkpoint when the
list is long). A state is written in place only by the branch owning its log, and only
while it is that log's newest version; anything else (a state brought over by a merge or a
rollback, a log that moved on) starts a fresh branch log.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.formats.delta import log
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


def owns(state: DeltaState, branch: str) -> bool:
    return state.writer == branch and log.latest_version(state.location) == state.version


def branch_dir(root: str, branch: str) -> str:
    """`<root>/_branches/<branch>-<random>`: a fresh directory for every branch log."""
    segment = re.sub(r"[^A-Za-z0-9_.-]", "_", branch)[:60].strip(".") or "branch"
    return parse_location(root).child(BRANCHES_DIR,
                                      f"{segment}-{uuid.uuid4().hex[:12]}").uri


def start_branch_log(state: DeltaState, branch: str,
                     files: log.LogState | None = None) -> WritableLog:
    """Write version 0 of a new branch log for `branch` holding `state`'s table."""
    parent = files or log.read_state(state.location, state.version)
    log.check_protocol(parent.protocol, state.location)
    location = branch_dir(state.root, branch)
    actions = [{"protocol": parent.protocol}, {"metaData": parent.metadata},
               *(f.add_action(absolute_path=True, data_change=False)
                 for f in parent.files.values())]
    path = log.write_commit(location, 0, actions, log.OP_BRANCH,
                            {"parentLocation": state.location,
                             "parentVersion": str(state.version)}, blind_append=True)
    if path is None:  # a random directory: someone else cannot have written it
        raise ConflictError(f"branch log {location} exists already")
    created = [path]
    if len(parent.files) > CHECKPOINT_FILES:
        log.open_table(location, 0).create_checkpoint()
        directory = os.path.dirname(path)
        created.extend(os.path.join(directory, n) for n in sorted(os.listdir(directory))
                       if n != os.path.basename(path))  # the checkpoint and its pointer
    forked = DeltaState(state.table_id, location, 0, state.root, branch)
    return WritableLog(forked, created, True, sum(os.path.getsize(p) for p in created))


def writable(state: DeltaState, branch: str) -> WritableLog:
    """`state` when `branch` may write on its log in place, else a new branch log."""
    if owns(state, branch):
        return WritableLog(state)
    return start_branch_log(state, branch)
