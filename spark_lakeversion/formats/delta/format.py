"""The Delta `TableFormat`: what the server, the merge engine and gc ask of a Delta state.
deltalake is imported by the methods that need it, not by loading the format."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.delta.codes import DELTA_CONFLICTS, DELTA_TABLE
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.locations import parse_location
from spark_lakeversion.model import Content, Key
from spark_lakeversion.tableformat.base import StateFiles, TableFormat, nothing
from spark_lakeversion.versioning.interface import DEFAULT_BRANCH

if TYPE_CHECKING:
    from spark_lakeversion.locations import AllowedRoots
    from spark_lakeversion.rows.source import RowChanges
    from spark_lakeversion.tableformat.merger import ContentMerger


class DeltaFormat(TableFormat):
    content_type = DELTA_TABLE
    conflict_types = DELTA_CONFLICTS

    def validate(self, key: Key, content: Content, roots: AllowedRoots,
                 io_properties: Mapping[str, str]) -> Content:
        """`root` and `location` lie under the allowed roots, `location` inside `root`;
        the log reads at `version`, its metaData id is the content id and its protocol
        needs nothing delta-rs cannot write (deletion vectors). The log is opened with
        the storage options `io_properties` give."""
        from spark_lakeversion.formats.delta import log

        parse_location(content.fields.get("location"), f"Delta table {key} location")
        state = DeltaState.of(content, key)
        root = roots.check(state.root, f"Delta table {key} root")
        location = roots.check(state.location, f"Delta table {key} location")
        if not location.is_under(root):
            raise InvalidInput(f"put {key}: location {state.location!r} is not inside the "
                               f"table root {state.root!r}")
        table = log.open_table(location.uri, state.version, io=io_properties)
        log.check_protocol(log.protocol_action(table), state.location)
        if table.metadata().id != content.id:
            raise InvalidInput(f"put {key}: content id {content.id!r} is not the Delta "
                               f"table id {table.metadata().id} of its log")
        return DeltaState(state.table_id, location.uri, state.version, root.uri,
                          state.writer).content()

    def claimed_locations(self, content: Content, io_properties: Mapping[str, str]
                          ) -> dict[str, str]:
        """The log it reads and the table root (gc treats the whole root as the table's):
        a root around another table would hand that table's files to this one."""
        state = DeltaState.of(content)
        return {"location": state.location, "root": state.root}

    def added_files(self, base: Content | None, content: Content,
                    io_properties: Mapping[str, str]) -> Iterator[tuple[str, str]]:
        """The log files after `base`'s version (all of a new log's) and the live data
        files `base` (the same table) did not have."""
        from spark_lakeversion.formats.delta import log

        state = DeltaState.of(content)
        old = DeltaState.of(base) if base is not None and \
            base.type is DELTA_TABLE and base.id == content.id else None
        if old is not None and (old.location, old.version) == (state.location, state.version):
            return
        first = old.version + 1 if old is not None and old.location == state.location else 0
        for version in range(first, state.version + 1):
            yield "log file", f"{state.location}/_delta_log/{log.log_name(version)}"
        known = set(log.read_state(old.location, old.version, io=io_properties).files) \
            if old else set()
        for fid in log.read_state(state.location, state.version, io=io_properties).files:
            if fid not in known:
                yield "data file", fid

    def row_changes(self, before: Content | None, after: Content | None,
                    io_properties: Mapping[str, str]) -> RowChanges:
        from spark_lakeversion.formats.delta.rows import row_changes

        return row_changes(before, after, io_properties)

    def restore(self, key: Key, current: Content, wanted: Content, branch: str,
                io_properties: Mapping[str, str] | None = None, *, preview: bool = False
                ) -> tuple[Content, Callable[[], None]]:
        """A new version on the branch's log whose files equal `wanted`'s: the log's
        version numbers stay sequential and history is never rewritten. A `preview`'s
        goes on a fresh side log (`branching.preview_log`)."""
        from spark_lakeversion.formats.delta import log, writes
        from spark_lakeversion.formats.delta.branching import preview_log, writable

        try:
            old = DeltaState.of(wanted, key)
            now = DeltaState.of(current, key)
            log.read_state(old.location, old.version, io=io_properties)
        except InvalidInput:
            return wanted, nothing  # a state whose log cannot be read: put it back as it is
        out = preview_log(now, branch, io_properties) if preview \
            else writable(now, branch, io_properties)
        try:
            outcome = writes.rollback(out.state, old, io_properties)
        except BaseException:
            log.delete_created(out.created, io_properties)
            raise
        created = [*out.created, *outcome.created]
        return (out.state.at(outcome.version).content(),
                lambda: log.delete_created(reversed(created), io_properties))

    def publish_preview(self, key: Key, target: Content | None, preview: Content,
                        branch: str, io_properties: Mapping[str, str]
                        ) -> tuple[Content, Callable[[], None]]:
        """The new state's net change written as the next version of the target's own log
        when the branch owns the table's root log or the state is a gate's preview of it
        (`branching.replay`); for a table main does not have yet (`target` None) born on
        a branch log, the state written as version 0 of the table's root log
        (`branching.adopt`), and one main had and dropped replayed as the next version of
        the root log it wrote (`branching.taken_back`); else the state as it is. The undo
        deletes only the version written here."""
        from spark_lakeversion.formats.delta import log
        from spark_lakeversion.formats.delta.branching import adopt, replay, taken_back

        try:
            now = DeltaState.of(target, key) if target is not None else None
            new = DeltaState.of(preview, key)
        except InvalidInput:
            return preview, nothing
        if now is None and branch != DEFAULT_BRANCH:
            return preview, nothing
        if now is None:  # a table main had comes back onto its root log's next version
            now = taken_back(new, branch, io_properties)
        published, created = adopt(new, branch, io_properties) if now is None \
            else replay(now, new, branch, io_properties)
        if not created:  # as it is, or the target's own state when both hold the same
            return (preview if published == new else published.content()), nothing
        return (published.content(),
                lambda: log.delete_created(reversed(created), io_properties))

    def reassigns(self, key: Key, current: Content | None, state: Content, branch: str,
                  io_properties: Mapping[str, str]) -> str | None:
        """Main, which owns each table's root log, may point at a state only where plain
        readers of the root read it: on the root log, at its newest version. A state a merge
        would write anew (`republishes`: on a branch log, or a table main lacks or had),
        or an older version of the root log, is refused: `rollback` writes it as the root
        log's next version."""
        from spark_lakeversion.formats.delta import log

        if branch != DEFAULT_BRANCH:
            return None
        reason = self.republishes(key, current, state, branch, io_properties)
        if reason is not None:
            return reason
        try:
            new = DeltaState.of(state, key)
        except InvalidInput:
            return None
        if new.location != new.root:
            return None  # a log of main's own (made before root logs were written): as is
        newest = log.latest_version(new.root, io_properties)
        if newest is not None and newest != new.version:
            return (f"{key} is version {new.version} of its root log, whose newest version "
                    f"is {newest}: plain readers of the table would go on reading version "
                    f"{newest}")
        return None

    def republishes(self, key: Key, target: Content | None, state: Content, branch: str,
                    io_properties: Mapping[str, str]) -> str | None:
        """Why `state` cannot be fast-forwarded onto: it lives on another log than the
        table's root log `branch` owns, which takes it as a new version
        (`branching.takes_over`); or main does not have the table (`target` None) and
        takes it, born on a branch log, as version 0 of its root log
        (`branching.takes_root`), or takes back a table it had onto the root log it wrote
        (`branching.taken_back`)."""
        from spark_lakeversion.formats.delta.branching import taken_back, takes_over, takes_root

        try:
            new = DeltaState.of(state, key)
            if target is None:
                if branch != DEFAULT_BRANCH:
                    return None
                if taken_back(new, branch, io_properties) is not None:
                    return (f"{key} is a Delta table {branch!r} had, whose root log it "
                            "writes again: the state is written there as a new version "
                            "(no fast-forward)")
                if not takes_root(new, io_properties):
                    return None
            elif not takes_over(DeltaState.of(target, key), new, branch, io_properties):
                return None
        except InvalidInput:
            return None
        if target is None:
            return (f"{key} is a Delta table new to {branch!r}, whose root log it takes: "
                    "the table is written there as version 0 (no fast-forward)")
        return (f"{key} is a Delta table whose own log {branch!r} writes: the change is "
                "written there as a new version (no fast-forward)")

    def merger(self) -> ContentMerger:
        from spark_lakeversion.formats.delta.merge import DeltaContentMerger

        return DeltaContentMerger()

    def state_files(self, reachable: set[str], roots: AllowedRoots | None,
                    io_properties: Mapping[str, str]) -> StateFiles:
        from spark_lakeversion.formats.delta.reachability import DeltaStateFiles

        return DeltaStateFiles(reachable, roots, io_properties)
