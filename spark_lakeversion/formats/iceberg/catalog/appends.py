"""Many writers on one table: pure appends are rebased onto the head instead of refused,
and appends arriving while a commit of their table is in flight are committed together.

`AppendCommitter.commit` takes a single-table commit that has the shape of a pure append
(`rebase.append_shape`), queues it per table, branch and caller (`group.GroupCommits`),
and the lane's leader applies its batch as one chain on the table at the branch head:
each member's requirements are checked on the chain so far; a member whose ref moved is
rebased (`rebase.rebase_append`) or, when that is not safe, refused alone with 409. The
chain is one metadata file and one store commit through the ordinary commit path
(`CatalogContext.commit`: protection, grants, limits, gc's fence, the store's
compare-and-swap). When the store refuses because the table changed meanwhile (another
server, another lane), the chain is rebuilt on the new head, up to `store_retries` times.
Any other refusal of a chain of several is answered member by member, each committed alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import TableRequirement, TableUpdate

from spark_lakeversion.errors import CommitOutcomeUnknown, LakeVersionError
from spark_lakeversion.formats.iceberg import content as fmt
from spark_lakeversion.formats.iceberg import files as iceberg_files
from spark_lakeversion.formats.iceberg import rebase
from spark_lakeversion.formats.iceberg.catalog.addressing import Address, split_namespace
from spark_lakeversion.formats.iceberg.catalog.commits import (
    apply_updates,
    describe_change,
    describe_updates,
)
from spark_lakeversion.formats.iceberg.catalog.errors import (
    IcebergError,
    StoreConflict,
    commit_failed,
)
from spark_lakeversion.formats.iceberg.catalog.group import GroupCommits, Member
from spark_lakeversion.formats.iceberg.catalog.meta import CommitMeta
from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings as AppendSettings
from spark_lakeversion.model import Content, Key, Put

if TYPE_CHECKING:
    from spark_lakeversion.formats.iceberg.catalog.context import CatalogContext

#: what a committed append answers: the table's metadata and its metadata file
Committed = tuple[TableMetadata, str]


class TableAccess(Protocol):
    """What the append committer needs of the table service that composes it (typed by
    shape: the service imports this module)."""

    ctx: CatalogContext

    def lookup(self, addr: Address, name: str) -> tuple[Key, Content | None]: ...

    def missing_table(self, addr: Address, key: Key) -> IcebergError: ...

    def read_metadata(self, metadata_location: str) -> TableMetadata: ...

    def write_metadata(self, metadata: TableMetadata, previous_location: str | None = None
                       ) -> str: ...

    def check_metadata(self, key: Key, metadata: TableMetadata,
                       base: TableMetadata | None = None, *,
                       read_current_only: bool = False,
                       written_lists: frozenset[str] = frozenset()) -> None: ...


@dataclass(frozen=True)
class AppendRequest:
    """One client's append, as its route parsed it."""

    prefix: str | None
    namespace: str
    table: str
    requirements: tuple[TableRequirement, ...]
    updates: tuple[TableUpdate, ...]
    meta: CommitMeta
    #: its files read and checked ahead, in its own thread (`rebase.inspect_append`), or
    #: why it cannot be rebased; None when it looked fresh (read if a rebase is needed)
    inspection: rebase.Inspected | Exception | None = None


@dataclass
class _Step:
    member: Member[AppendRequest, Committed]
    rebased: rebase.Rebased | None
    description: str
    snapshot_id: int


class AppendCommitter:
    """The rebase and group commit of one catalog's table service."""

    def __init__(self, tables: TableAccess) -> None:
        self.tables = tables
        self.ctx = tables.ctx
        self.settings = self.ctx.appends
        self.groups: GroupCommits[AppendRequest, Committed] = GroupCommits(
            self.settings.group_max, self.settings.group_wait_s)

    def accepts(self, requirements: Any, updates: Any) -> bool:
        """Whether a commit goes this way: the rebase is on and it looks like a pure
        append. Anything else never waits in a queue."""
        return self.settings.rebase and rebase.append_shape(requirements, updates) is not None

    def commit(self, addr: Address, request: AppendRequest) -> Committed:
        key = addr.key(request.table)
        meta = request.meta
        lane = (addr.branch(), str(key), self.ctx.caller(), meta.author, meta.message,
                tuple(sorted(meta.properties.items())))
        # stale already, or about to be (a commit of its table is in flight): the
        # head-independent work of its rebase runs here, in its own thread, not in the chain
        if self.groups.busy(lane) or self._stale(addr, request):
            request = replace(request, inspection=self._inspect(request))
        return self.groups.submit(lane, request, self._run)

    def _stale(self, addr: Address, request: AppendRequest) -> bool:
        """Whether the table at the head the request resolved no longer has the snapshot
        it asserts (then it will be rebased: its files are read before it queues)."""
        shape = rebase.append_shape(request.requirements, request.updates)
        _, content = self.tables.lookup(addr, request.table)
        if shape is None or content is None:
            return False
        current = self.tables.read_metadata(fmt.metadata_location_of(content))
        ref = current.refs.get(shape.ref)
        return (ref.snapshot_id if ref is not None else None) != shape.asserted

    def _inspect(self, request: AppendRequest) -> rebase.Inspected | Exception:
        try:
            return rebase.inspect_append(request.requirements, request.updates, self.ctx.io,
                                         self.ctx.roots)
        except (rebase.NotRebased, LakeVersionError) as exc:
            return exc

    # ---- one chain -------------------------------------------------------------------
    def _run(self, members: list[Member[AppendRequest, Committed]]) -> None:
        pending = list(members)
        for attempt in range(self.settings.store_retries + 1):
            pending = self._attempt(pending, last=attempt == self.settings.store_retries)
            if not pending:
                return

    def _attempt(self, members: list[Member[AppendRequest, Committed]], *, last: bool
                 ) -> list[Member[AppendRequest, Committed]]:
        """One try of the chain on the branch head: the members to try again (the store
        refused because the table moved), answering every other one."""
        first = members[0].request
        addr = self.ctx.address(first.prefix, split_namespace(first.namespace), table_op=True)
        key, content = self.tables.lookup(addr, first.table)
        if content is None:
            error = self.tables.missing_table(addr, key)
            for m in members:
                m.fail(error)
            return []
        base_location = fmt.metadata_location_of(content)
        base = self.tables.read_metadata(base_location)
        current, steps = base, []
        for m in members:
            step, metadata = self._step(key, current, base_location if current is base
                                        else None, m)
            if step is not None and metadata is not None:
                current = metadata
                steps.append(step)
        if not steps:
            return []
        lists = [s.rebased.manifest_list for s in steps if s.rebased is not None]
        try:
            location = self.tables.write_metadata(current, base_location)
        except BaseException:
            for path in lists:
                iceberg_files.delete_created(path)
            raise
        message, props = self._describe(key, steps)
        try:
            self.ctx.commit(addr, [Put(key, fmt.iceberg_content(current, location))],
                            first.meta, message, props, written=[location, *lists],
                            changes=[(base, current)])
        except CommitOutcomeUnknown as exc:  # it may have landed: never re-run a member
            for s in steps:
                s.member.fail(exc)
            return []
        except StoreConflict as exc:
            if not self.settings.rebase or last:
                for s in steps:
                    s.member.fail(exc)
                return []
            return [s.member for s in steps]
        except (IcebergError, LakeVersionError) as exc:
            if len(steps) == 1:
                steps[0].member.fail(exc)
                return []
            for s in steps:  # a failed member fails alone: each one on its own
                self._run([s.member])
            return []
        for s in steps:
            s.member.succeed((current, location))
        return []

    def _step(self, key: Key, current: TableMetadata, current_location: str | None,
              member: Member[AppendRequest, Committed]
              ) -> tuple[_Step | None, TableMetadata | None]:
        """One member applied on the chain so far, rebased when its ref moved; a member
        that cannot be applied is answered here, alone."""
        request = member.request
        rebased: rebase.Rebased | None = None
        try:
            updates: tuple[TableUpdate, ...] = request.updates
            try:
                for requirement in request.requirements:
                    requirement.validate(current)
            except CommitFailedException as exc:
                rebased = self._rebase(key, current, request, exc)
                updates = rebased.updates
            metadata = apply_updates(key, current, current_location, updates, shallow=True)
            # a list the server wrote names only manifests it checked (the new ones when
            # inspected, the head's when committed): not read back
            self.tables.check_metadata(key, metadata, current, written_lists=frozenset(
                [rebased.manifest_list] if rebased is not None else []))
        except (IcebergError, LakeVersionError) as exc:
            if rebased is not None:
                iceberg_files.delete_created(rebased.manifest_list)
            member.fail(exc)
            return None, None
        operation, props, snapshots = describe_updates(updates)
        description = describe_change(operation, key, snapshots)
        if rebased is not None:
            description += (f" (rebased onto snapshot {rebased.onto})" if rebased.onto
                            is not None else " (rebased)")
        return _Step(member, rebased, description,
                     int(props.get("iceberg.snapshot-id", 0))), metadata

    def _rebase(self, key: Key, current: TableMetadata, request: AppendRequest,
                refused: CommitFailedException) -> rebase.Rebased:
        if not rebase.enabled(current):
            raise commit_failed(f"{key}: {refused} (not rebased: table property "
                                f"{rebase.REBASE_PROPERTY} is false)")
        inspection = request.inspection if request.inspection is not None \
            else self._inspect(request)
        try:
            if isinstance(inspection, Exception):  # why it cannot be rebased, read ahead
                raise inspection
            return rebase.rebase_append(current, inspection, self.ctx.io)
        except rebase.NotRebased as exc:
            raise commit_failed(f"{key}: {refused} (not rebased: {exc.reason})") from None

    @staticmethod
    def _describe(key: Key, steps: list[_Step]) -> tuple[str, dict[str, Any]]:
        """The store commit's default message and properties: what each append did, which
        were rebased (and from which snapshot onto which), and the group's size."""
        props: dict[str, Any] = {"iceberg.operation": "append", "iceberg.table": str(key),
                                 "iceberg.snapshot-id": steps[-1].snapshot_id}
        rebased = [s for s in steps if s.rebased is not None]
        if rebased:
            props["lakeversion.rebased"] = ",".join(str(s.snapshot_id) for s in rebased)
            props["lakeversion.rebased-from"] = ",".join(
                "none" if s.rebased is None or s.rebased.asserted is None
                else str(s.rebased.asserted) for s in rebased)
        if len(steps) > 1:
            props["lakeversion.group-commit"] = len(steps)
            props["iceberg.snapshot-ids"] = ",".join(str(s.snapshot_id) for s in steps)
        return "; ".join(s.description for s in steps), props
