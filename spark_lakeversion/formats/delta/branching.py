"""Branch logs: the first write of a branch to a Delta table starts the branch's own log.

Version 0 of a branch log copies the parent state's `protocol` and `metaData` and lists
the parent's live files by the path `log.add_path` gives (relative, ``../../p=a/...`` for
the table's own files), so no data file is copied; branch creation stays
O(1) and only this first write pays O(live files) in log bytes (with a checkpoint when the
list is long). A state is written in place only by the branch owning its log, and only
while it is that log's newest version; anything else (a state brought over by a merge or a
rollback, a log that moved on) starts a fresh branch log.

A gated merge's or revert's **preview** never writes on the log it would publish on: it
always starts a fresh branch log of the target's state (`preview_log`), so plain readers
of the table root never see a state its checks have not passed (or refused). Only when the
gate publishes is the same change replayed as the next version of the target's own log
(`replay_preview`, put-if-absent); when the target no longer owns that log the preview's
log is published as it is, as any write on a state the branch does not own.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.locations import parse_location

#: the directory under a table's root that holds its branch logs (hidden from vacuum)
BRANCHES_DIR = "_branches"
#: a branch log listing more files than this gets a checkpoint in the same step
CHECKPOINT_FILES = 1000
#: actions naming a data file by a path that the replay re-spells for the target's log
PATH_ACTIONS = ("add", "remove", "cdc")

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


def replay_preview(target: DeltaState, preview: DeltaState, branch: str,
                   io: Mapping[str, str] | None = None) -> tuple[DeltaState, list[str]]:
    """`preview`'s versions after its branch point, written as the next versions of
    `target`'s own log (put-if-absent), each path re-spelled for that log (a removed file
    as that log names it): the published state and the log files written. `preview` as
    it is (nothing written) when it is not `preview_log`'s of `target`, when `branch`
    does not own `target`'s log any more, or when that log moved meanwhile (a lost race);
    also, logged, when the replayed state would not hold `preview`'s files, metadata
    and protocol exactly."""
    if not forked_from(preview, target, branch, io) or not owns(target, branch, io):
        return preview, []
    own = log.read_state(target.location, target.version, io=io)
    paths = {fid: f.path for fid, f in own.files.items()}
    created: list[str] = []
    try:
        for version in range(1, preview.version + 1):
            actions = log.commit_actions(preview.location, version, io)
            info: dict[str, Any] = {}
            replayed = []
            for action in actions:
                if "commitInfo" in action:
                    info = dict(action["commitInfo"])
                    continue
                replayed.append(_respelled(action, preview.location, target.location, paths))
            if not info:  # unreadable: nothing to replay faithfully
                raise _NotReplayed(f"version {version} of {preview.location} is unreadable")
            params = {**(info.get("operationParameters") or {}),
                      "previewLocation": preview.location, "previewVersion": str(version)}
            uri = log.write_commit(target.location, target.version + version, replayed,
                                   str(info.get("operation") or log.OP_MERGE), params,
                                   blind_append=bool(info.get("isBlindAppend")), io=io)
            if uri is None:
                raise _NotReplayed(f"the log at {target.location} moved")
            created.append(uri)
        published = target.at(target.version + preview.version)
        _check_same(published, preview, io)
    except _NotReplayed as exc:
        log.delete_created(reversed(created), io)
        logger.info("published the preview at %s as it is: %s", preview.location, exc)
        return preview, []
    except BaseException:
        log.delete_created(reversed(created), io)
        raise
    return published, created


class _NotReplayed(Exception):
    """The preview cannot be replayed on the target's log: it is published as it is."""


def _respelled(action: Mapping[str, Any], source: str, target: str,
               paths: dict[str, str]) -> dict[str, Any]:
    """`action` of the log at `source` as the log at `target` writes it: its file path
    re-spelled (`log.add_path`; a removed file by the path that log added it with)."""
    kind = next((k for k in PATH_ACTIONS if k in action), None)
    if kind is None:
        return dict(action)
    body = dict(action[kind])
    fid = log.file_id(source, str(body["path"]))
    if kind == "remove":
        body["path"] = paths.pop(fid, None) or \
            log.add_path(target, log.absolute(source, str(body["path"])))
    else:
        body["path"] = log.add_path(target, log.absolute(source, str(body["path"])))
        if kind == "add":
            paths[fid] = body["path"]
    return {kind: body}


def _check_same(published: DeltaState, preview: DeltaState,
                io: Mapping[str, str] | None) -> None:
    """The replayed state holds exactly what the checks judged: the preview's live files,
    metadata and protocol."""
    mine = log.read_state(published.location, published.version, io=io)
    judged = log.read_state(preview.location, preview.version, io=io)
    for what, a, b in (("files", set(mine.files), set(judged.files)),
                       ("metadata", mine.metadata, judged.metadata),
                       ("protocol", mine.protocol, judged.protocol)):
        if a != b:
            raise _NotReplayed(f"the replayed {what} differ from the preview's")
