"""Branch logs: the first write of a branch to a Delta table starts the branch's own log.

Version 0 of a branch log copies the parent state's `protocol` and `metaData` and lists
the parent's live files by the path `log.add_path` gives (relative, ``../../p=a/...`` for
the table's own files), so no data file is copied; branch creation stays
O(1) and only this first write pays O(live files) in log bytes (with a checkpoint when the
list is long). A state is written in place only by the branch owning its log, and only
while it is that log's newest version; anything else (a state brought over by a merge or a
rollback, a log that moved on) starts a fresh branch log.

A branch that owns its table's root log (main) keeps owning it across every merge into
it: whenever a merge (gated or not, even one that could fast-forward) gives it a state of
its table on another log (a branch's, a gate's preview), the net change is written as ONE
next version of its own log (`replay`, put-if-absent) and the branch points there; so
main's root log, which plain readers of the table read, always holds main's state. A gated
merge's or revert's **preview** never writes on the log it would publish on: it always
starts a fresh branch log of the target's state (`preview_log`), so plain readers never
see a state its checks have not passed (or refused); only the gate's publish replays it.
When the branch does not own the log (any other branch's first write) the state is
published as it is.

A table created on a branch other than main starts its life on a branch log of that
branch (`<root>/_branches/...`, `tables.new_table`): its root log does not exist, so plain
readers of the root read no table until main has it. The merge (or cherry-pick, revert,
rollback: `versioning.picks`) that gives main such a table (main had no state of it; its
log's history never touched the root log: `born_on_branch`) writes its state as version 0
of the root log (`adopt`, put-if-absent; a version 0 already there is a `ConflictError`,
never overwritten), and main points there: from then on the root log is main's, as for
every other table.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.errors import ConflictError, InvalidInput, ReferenceConflict
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.locations import parse_location

#: the directory under a table's root that holds its branch logs (hidden from vacuum)
BRANCHES_DIR = "_branches"
#: a branch log listing more files than this gets a checkpoint in the same step
CHECKPOINT_FILES = 1000
#: the longest chain of branch logs `born_on_branch` follows back to a table's first log
MAX_FORKS = 1000

logger = logging.getLogger(__name__)


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
    created = _checkpointed(location, uri, len(parent.files), io)
    forked = DeltaState(state.table_id, location, 0, state.root, branch)
    return WritableLog(forked, created, True, sum(storage.size(u, io) for u in created))


def _checkpointed(location: str, uri: str, files: int, io: Mapping[str, str] | None
                  ) -> list[str]:
    """The files a new log's version 0 (`uri`) made: with a checkpoint beside it when it
    lists more than `CHECKPOINT_FILES` files."""
    created = [uri]
    if files > CHECKPOINT_FILES:
        log.open_table(location, 0, io=io).create_checkpoint()
        created.extend(u for _, u in sorted(log.log_files(location, io)) if u != uri)
        created.append(f"{log.log_dir(location)}/_last_checkpoint")
    return created


def writable(state: DeltaState, branch: str, io: Mapping[str, str] | None = None
             ) -> WritableLog:
    """`state` when `branch` may write on its log in place, else a new branch log."""
    if owns(state, branch, io):
        return WritableLog(state)
    return start_branch_log(state, branch, io=io)


def preview_log(state: DeltaState, branch: str, io: Mapping[str, str] | None = None
                ) -> WritableLog:
    """Where a gated preview of `branch`'s `state` is written: always a fresh branch log
    (never `state`'s own, which plain readers of the table read)."""
    return start_branch_log(state, branch, io=io)


def forked_from(preview: DeltaState, target: DeltaState, branch: str,
                io: Mapping[str, str] | None = None) -> bool:
    """Whether `preview` is a branch log `branch` started from exactly `target` (its
    version 0 says so) and wrote on since: what `preview_log` makes."""
    if preview.writer != branch or target.writer != branch or preview.root != target.root \
            or preview.location == target.location or preview.version < 1:
        return False
    info = log.commit_info(0, preview.location, io)
    params = info.get("operationParameters") or {}
    return info.get("operation") == log.OP_BRANCH and \
        params.get("parentLocation") == target.location and \
        params.get("parentVersion") == str(target.version)


def takes_over(target: DeltaState, new: DeltaState, branch: str,
               io: Mapping[str, str] | None = None) -> bool:
    """Whether `new`, a state of `target`'s table on another log, is written anew on
    `target`'s own log when `branch` gets it (`replay`): `branch` owns that log, and it is
    the table's root log (which plain readers of the table read) or `new` is a gate's
    preview of exactly `target` (`forked_from`). A branch owning a branch log takes other
    logs' states as they are: no plain reader reads its log."""
    return new.table_id == target.table_id and new.root == target.root \
        and new.location != target.location and owns(target, branch, io) \
        and (target.location == target.root or forked_from(new, target, branch, io))


def replay(target: DeltaState, new: DeltaState, branch: str,
           io: Mapping[str, str] | None = None) -> tuple[DeltaState, list[str]]:
    """`new`'s net change over `target` written as ONE next version of `target`'s own log
    (put-if-absent): removes of `target`'s files `new` does not hold (as that log names
    them), adds of `new`'s other files (re-spelled by `log.add_path`), and `new`'s
    `protocol`/`metaData` where they differ. The state published and the log files
    written. A gated merge's or revert's preview (`preview_log`'s) and a merge's state
    of another branch's log are replayed alike.

    `new` as it is (nothing written) unless `takes_over`; also, logged, when a log cannot
    be read or the replayed state would not hold `new`'s live files, metadata and protocol
    exactly. `ReferenceConflict` when `target`'s log moved meanwhile (a lost race: plan
    again). `target` itself, nothing written, when the two hold the same table state."""
    if not takes_over(target, new, branch, io):
        return new, []
    try:
        own = log.read_state(target.location, target.version, io=io)
        theirs = log.read_state(new.location, new.version, io=io)
        log.check_protocol(theirs.protocol, new.location)
    except InvalidInput as exc:
        logger.warning("published %s as it is: %s", new.location, exc.message)
        return new, []
    actions: list[dict[str, Any]] = []
    if theirs.protocol != own.protocol:
        actions.append({"protocol": theirs.protocol})
    if theirs.metadata != own.metadata:
        actions.append({"metaData": theirs.metadata})
    actions += [f.remove_action() for fid, f in sorted(own.files.items())
                if fid not in theirs.files]
    actions += [f.add_action(log_location=target.location, data_change=True)
                for fid, f in sorted(theirs.files.items()) if fid not in own.files]
    if not actions:
        return target, []
    operation, params, blind = _described(target, new, branch, io)
    version = target.version + 1
    uri = log.write_commit(target.location, version, actions, operation, params,
                           blind_append=blind, io=io)
    if uri is None:
        raise ReferenceConflict(f"the Delta log at {target.location} moved while "
                                f"{branch!r} took a new state of it")
    published = target.at(version)
    try:
        _check_same(published, theirs, io)
    except _NotReplayed as exc:
        log.delete_created([uri], io)
        logger.warning("published %s as it is: %s", new.location, exc)
        return new, []
    except BaseException:
        log.delete_created([uri], io)
        raise
    return published, [uri]


def _described(target: DeltaState, new: DeltaState, branch: str,
               io: Mapping[str, str] | None) -> tuple[str, dict[str, str], bool]:
    """The replayed version's operation, parameters and blind-append flag: a one-version
    preview's own (a merge's, a revert's), with where it was checked; else a merge of
    `new` that is never a blind append (a later merge's conflict rules then read it as a
    write that may have read the table: the safe side)."""
    if new.version == 1 and forked_from(new, target, branch, io):
        info = log.commit_info(1, new.location, io)
        if info:
            return (str(info.get("operation") or log.OP_MERGE),
                    {**(info.get("operationParameters") or {}),
                     "previewLocation": new.location, "previewVersion": "1"},
                    bool(info.get("isBlindAppend")))
    return log.OP_MERGE, {"sourceLocation": new.location,
                          "sourceVersion": str(new.version)}, False


class _NotReplayed(Exception):
    """The replay does not hold the new state exactly: that state is published as it is."""


def _check_same(published: DeltaState, wanted: log.LogState,
                io: Mapping[str, str] | None) -> None:
    """The replayed state holds exactly the state it replays (what a gate's checks
    judged): its live files, metadata and protocol."""
    mine = log.read_state(published.location, published.version, io=io)
    for what, a, b in (("files", set(mine.files), set(wanted.files)),
                       ("metadata", mine.metadata, wanted.metadata),
                       ("protocol", mine.protocol, wanted.protocol)):
        if a != b:
            raise _NotReplayed(f"the replayed {what} differ from the state's")


# ---- a table new to main: taken onto its root log ----------------------------------------
def lineage(state: DeltaState, io: Mapping[str, str] | None = None
            ) -> tuple[list[str], bool]:
    """The logs `state`'s table went through, newest first (following each log's version
    0 back: a branch log names the log it was started from), and whether the walk ended
    at a log the table was created on (readable, not a branch log's start) rather than at
    the root log, an unreadable log or the walk's bound."""
    seen: list[str] = []
    location = state.location
    for _ in range(MAX_FORKS):
        seen.append(location)
        if location == state.root:
            return seen, False
        info = log.commit_info(0, location, io)
        params = info.get("operationParameters") or {}
        parent = params.get("parentLocation")
        if info.get("operation") != log.OP_BRANCH or not isinstance(parent, str):
            return seen, bool(info)  # the log this table was created on (unreadable: no)
        location = parent.rstrip("/")
    return seen, False


def born_on_branch(state: DeltaState, io: Mapping[str, str] | None = None) -> bool:
    """Whether `state`'s table began on a branch log (`lineage` ends at a log under the
    root other than the root log itself: `tables.new_table` on a branch other than main),
    so the root log never held a state of this lineage. A table created on main or
    registered (its lineage starts at its root log) is not."""
    return lineage(state, io)[1]


def taken_back(new: DeltaState, branch: str, io: Mapping[str, str] | None = None
               ) -> DeltaState | None:
    """The newest state of `new`'s table root log, as `branch` (main) owns it, when main,
    getting `new` for a table it does not have, takes back a table it had and dropped:
    `new` lives on another log, and the root log exists and belongs to `new`'s lineage
    (`new`'s logs go back to it, or its version 0 is `adopt`'s taking of one of them).
    Main's state is then `new` replayed there as the next version (`replay`), as for a
    table main has: never version 0 again (`adopt`), and never a pointer to another
    branch's log, which would leave plain readers of the root on the state main dropped.
    None otherwise (a root log someone else wrote stays theirs)."""
    if new.location == new.root:
        return None
    latest = log.latest_version(new.root, io)
    if latest is None:
        return None
    logs, _ = lineage(new, io)
    if new.root not in logs:
        first = log.commit_info(0, new.root, io)
        source = (first.get("operationParameters") or {}).get("sourceLocation")
        if first.get("operation") != log.OP_MERGE or first.get("engineInfo") != log.ENGINE \
                or not isinstance(source, str) or source.rstrip("/") not in logs:
            return None
    return DeltaState(new.table_id, new.root, latest, new.root, branch)


def takes_root(new: DeltaState, io: Mapping[str, str] | None = None) -> bool:
    """Whether main, getting `new` for a table it does not have, writes it as version 0
    of the table's root log (`adopt`): `new` lives on a branch log of a table born there
    (`born_on_branch`)."""
    return new.location != new.root and born_on_branch(new, io)


def adopt(new: DeltaState, branch: str, io: Mapping[str, str] | None = None
          ) -> tuple[DeltaState, list[str]]:
    """`new` written as version 0 of its table's root log for `branch` (main), which
    then owns that log: `new`'s protocol, metaData and an add per live file (re-spelled
    for the root by `log.add_path`; no data file is copied), put-if-absent. The state
    published and the log files written (to delete again if the publish then fails).
    `new` as it is, nothing written, unless `takes_root`. `ConflictError` when the root
    log has a version 0 already: it is never overwritten."""
    if not takes_root(new, io):
        return new, []
    theirs = log.read_state(new.location, new.version, io=io)
    log.check_protocol(theirs.protocol, new.location)
    root = new.root
    actions = [{"protocol": theirs.protocol}, {"metaData": theirs.metadata},
               *(f.add_action(log_location=root, data_change=True)
                 for _, f in sorted(theirs.files.items()))]
    uri = log.write_commit(root, 0, actions, log.OP_MERGE,
                           {"sourceLocation": new.location,
                            "sourceVersion": str(new.version)}, io=io)
    if uri is None:
        raise ConflictError(f"the Delta table root {root} has a log already: {branch!r} "
                            f"cannot take {new.location} version {new.version} as its "
                            "version 0")
    created: list[str] = [uri]
    published = DeltaState(new.table_id, root, 0, root, branch)
    try:
        created = _checkpointed(root, uri, len(theirs.files), io)
        _check_same(published, theirs, io)
    except _NotReplayed as exc:
        log.delete_created(reversed(created), io)
        raise InvalidInput(f"{branch!r} cannot take {new.location} onto the table's root "
                           f"log: {exc}") from None
    except BaseException:
        log.delete_created(reversed(created), io)
        raise
    return published, created
