"""`Catalog`: the entry point over one `VersionStore`, handing out ref handles, runs, gc
and merge requests (`connect()` in `spark_lakeversion.api` opens one)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spark_lakeversion.gc import GcReport
    from spark_lakeversion.locations import AllowedRoots
    from spark_lakeversion.runs import Run

from spark_lakeversion.api.named import Branch, Tag
from spark_lakeversion.api.reference import Reference, RefLike, branch_name, ref_expression
from spark_lakeversion.locations import root_uri, warehouse_uri
from spark_lakeversion.model import MergeRequest, MergeResult, MrStatus, RefType
from spark_lakeversion.versioning import DEFAULT_BRANCH, VersionStore
from spark_lakeversion.versioning.names import validate_ref_name


class Catalog:
    """Entry point: hands out ref handles over one `VersionStore`."""

    def __init__(self, store: VersionStore, *, author: str | None = None,
                 warehouse: str | None = None, allowed_locations: Iterable[str] = (),
                 properties: Mapping[str, str] | None = None,
                 default_branch: str = DEFAULT_BRANCH) -> None:
        self.store = store
        self.author = author
        self._warehouse = root_uri(warehouse) if warehouse else None
        self.allowed_locations = [root_uri(a) for a in allowed_locations]
        #: stamped on every commit and merge made through this catalog (e.g. a run's id)
        self.properties = dict(properties or {})
        self.default_branch = validate_ref_name(default_branch)

    @property
    def warehouse(self) -> str:
        """The URI new Delta tables go under (created on first use when local)."""
        self._warehouse = warehouse_uri(self._warehouse)
        return self._warehouse

    def roots(self) -> AllowedRoots:
        """Where this catalog's Delta files may live: the warehouse and allowed locations."""
        from spark_lakeversion.locations import AllowedRoots

        return AllowedRoots([self.warehouse, *self.allowed_locations])

    def branch(self, name: str | Branch | None = None) -> Branch:
        """A branch handle; without a name, `default_branch` (a run's branch in a run)."""
        return Branch(self, branch_name(self.default_branch if name is None else name))

    def run(self, on: str | Branch = DEFAULT_BRANCH, *, branch: str | None = None,
            keep_branch: bool = False, message: str | None = None,
            properties: Mapping[str, str] | None = None) -> Run:
        """A transactional run: ``with catalog.run(on="main") as run:`` writes go to
        `run.branch`, which is merged into `on` (through its gates) on a clean exit and
        kept on an exception, which propagates (see `spark_lakeversion.runs`)."""
        from spark_lakeversion.runs import Run

        return Run(self, branch_name(on), branch=branch, keep_branch=keep_branch,
                   message=message, properties=properties)

    def tag(self, name: str | Tag) -> Tag:
        return Tag(self, name.name if isinstance(name, Tag) else validate_ref_name(name))

    def ref(self, expression: RefLike) -> Reference:
        """A read-only handle on any ref expression: ``main~2``, ``v1``, a commit id..."""
        return Reference(self, ref_expression(expression))

    def branches(self) -> list[Branch]:
        return [Branch(self, r.name) for r in self.store.list_refs(RefType.BRANCH)]

    def tags(self) -> list[Tag]:
        return [Tag(self, r.name) for r in self.store.list_refs(RefType.TAG)]

    def collect_garbage(self, *, roots: AllowedRoots | Iterable[str] | None = None,
                        older_than: timedelta | str = "1d",
                        keep_commits_since: timedelta | str = "7d",
                        dry_run: bool = False, force: bool = False,
                        io: Mapping[str, str] | None = None) -> GcReport:
        """Delete files no ref, tag or retained commit reaches (see spark_lakeversion.gc).

        `roots` (the warehouse and any allowed locations) are required for a local store;
        over HTTP gc runs on the server with its own. `older_than` below 1h needs `force`.
        `io`: the FileIO properties files are opened with (`spark_lakeversion.fileio`;
        default the store's own, fixed when it was opened, else the standard
        `AWS_...`/`PYICEBERG_...` environment; not over HTTP).
        """
        from spark_lakeversion.fileio import FileIOConfig
        from spark_lakeversion.gc import collect_garbage

        if io is None and not hasattr(self.store, "gc_on_server"):
            io = self.store.io_properties or FileIOConfig.from_environment()
        return collect_garbage(self.store, roots=roots, older_than=older_than,
                               keep_commits_since=keep_commits_since, dry_run=dry_run,
                               force=force, io_properties=io)

    # ---- merge requests (`spark_lakeversion.versioning.reviews`) --------------------------
    def open_merge_request(self, source: str | Branch, target: str | Branch = DEFAULT_BRANCH,
                           *, title: str, description: str = "") -> MergeRequest:
        """Propose merging branch `source` into `target`; merged by `merge_request_merge`."""
        return self.store.open_merge_request(branch_name(source), branch_name(target),
                                             title=title, description=description,
                                             author=self.author)

    def merge_request(self, number: int) -> MergeRequest:
        return self.store.get_merge_request(number)

    def merge_requests(self, status: MrStatus | str | None = None, *,
                       before: int | None = None, limit: int = 50) -> list[MergeRequest]:
        """Newest first; `before`: the last number of the previous page."""
        return self.store.list_merge_requests(MrStatus(status) if status else None,
                                              before, limit)

    def approve_merge_request(self, number: int) -> MergeRequest:
        """Approve its source's current head (a later push to the source voids it)."""
        return self.store.approve_merge_request(number, self.author)

    def merge_merge_request(self, number: int, *, message: str | None = None) -> MergeResult:
        """Merge it through the merge path (checks, protection, approvals)."""
        return self.store.merge_merge_request(number, author=self.author, message=message)

    def close_merge_request(self, number: int) -> MergeRequest:
        return self.store.close_merge_request(number)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({getattr(self.store, 'url', type(self.store).__name__)!r})"
