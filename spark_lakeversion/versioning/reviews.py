"""`MergeRequests`: proposals to merge a source branch into a target, with approvals.

A merge request is reviewed, approved and merged; merging it runs the ordinary merge
(`Merging.merge_with`: the gates, checks and protection all apply) of the source head the
approvals named. A branch may require N approvals (`protect_branch(require_approvals=N)`,
a rule of protected branches): a merge into it is then refused unless it is the merge of
a request holding N approvals of its current source head, by principals other than its
author. Who may approve (`merge` on the target) is the access layer's rule
(`versioning.access.RULES`); the approver's name arrives here as a value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from spark_lakeversion.errors import ConflictError, InvalidInput, KeyNotFound, ProtectedBranch
from spark_lakeversion.limits import Limits, check_text
from spark_lakeversion.model import MergeRequest, MergeResult, MrStatus, RefType
from spark_lakeversion.store.spi import Storage
from spark_lakeversion.versioning.interface import DEFAULT_AUTHOR
from spark_lakeversion.versioning.names import validate_ref_name
from spark_lakeversion.versioning.options import MergeOptions
from spark_lakeversion.versioning.refs import Refs

#: a merge request's title, at most (bytes of UTF-8)
MAX_TITLE_BYTES = 500
#: commit property naming the merge request a merge commit came from
MERGE_REQUEST_PROPERTY = "lakeversion.merge-request"
#: the most requests one listing answers
MAX_PAGE = 200
#: request numbers are below this (a 64-bit column; JSON clients read 53 bits exactly)
MAX_NUMBER = 2**53


def check_number(number: object, what: str = "a merge request number") -> int:
    if isinstance(number, bool) or not isinstance(number, int) or \
            not 1 <= number < MAX_NUMBER:
        raise InvalidInput(f"{what} is a whole number from 1 to {MAX_NUMBER - 1}")
    return number


def approvals_error(target: str, required: int, have: int) -> ProtectedBranch:
    return ProtectedBranch(
        f"branch {target!r} is protected: a merge into it needs {required} approval(s) of "
        f"the source's current head by principals with 'merge' on it other than the "
        f"author, and has {have}; open a merge request (lakeversion mr open) and have it "
        "approved")


def revert_needs_review(branch: str, required: int) -> ProtectedBranch:
    """A revert publishes a state on `branch` no approver has seen: it takes the road of
    any new state of a branch requiring approvals, a merge request."""
    return ProtectedBranch(
        f"branch {branch!r} is protected: a new state of it needs {required} approval(s), "
        "and a revert publishes one; revert on a branch made from it "
        f"(lakeversion branch create NAME --from {branch}; lakeversion revert COMMIT --on "
        f"NAME), then open a merge request (lakeversion mr open NAME --into {branch}) and "
        "have it approved")


def check_required(required: object) -> int:
    if isinstance(required, bool) or not isinstance(required, int) or not 0 <= required <= 100:
        raise InvalidInput("require_approvals must be a whole number from 0 to 100")
    return required


class MergeRequests:
    """Open, list, approve, merge and close merge requests. `merge` is the merge path
    (`Merging.merge_with` with `approved=True`: the approvals were counted here)."""

    def __init__(self, storage: Storage, limits: Limits, refs: Refs,
                 merge: Callable[[str, str, MergeOptions], MergeResult]) -> None:
        self.storage = storage
        self.limits = limits
        self.refs = refs
        self._merge = merge

    def required(self, branch: str) -> int:
        with self.storage.reading() as reader:
            return reader.required_approvals().get(branch, 0)

    def all_required(self) -> dict[str, int]:
        with self.storage.reading() as reader:
            return reader.required_approvals()

    def _branch(self, name: object, what: str) -> str:
        if not isinstance(name, str):
            raise InvalidInput(f"the {what} must be a branch name")
        validate_ref_name(name)
        ref = self.refs.get(name)
        if ref.type is not RefType.BRANCH:
            raise InvalidInput(f"the {what} {name!r} is a tag: a merge request joins branches")
        return name

    def _filled(self, request: MergeRequest) -> MergeRequest:
        """With the source's head now (the merged one once merged) and the requirement."""
        if request.status is MrStatus.MERGED:  # the store kept the head it merged
            return request.with_state(request.source_head, self.required(request.target))
        ref = self.storage.find_ref(request.source)
        return request.with_state(ref.head if ref is not None else None,
                                  self.required(request.target))

    def open(self, source: str, target: str, title: str, description: str,
             author: str | None) -> MergeRequest:
        source = self._branch(source, "source")
        target = self._branch(target, "target")
        if source == target:
            raise InvalidInput("a merge request's source and target must differ")
        check_text(title, "the title", MAX_TITLE_BYTES, "max_message_bytes")
        if not title.strip():
            raise InvalidInput("a merge request needs a title")
        check_text(description, "the description", self.limits.max_message_bytes,
                   "max_message_bytes")
        who = check_text(author or DEFAULT_AUTHOR, "the author",
                         self.limits.max_property_value_bytes, "max_property_value_bytes")
        with self.storage.writing() as tx:
            number = tx.add_merge_request(source, target, title.strip(), description, who,
                                          datetime.now(timezone.utc))
        return self.get(number)

    def get(self, number: int) -> MergeRequest:
        check_number(number)
        with self.storage.reading() as reader:
            found = reader.merge_request(number)
        if found is None:
            raise KeyNotFound(f"no merge request #{number}")
        return self._filled(found)

    def list(self, status: MrStatus | None, before: int | None, limit: int
             ) -> list[MergeRequest]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}")
        if before is not None:
            check_number(before, "before")
        with self.storage.reading() as reader:
            found = reader.merge_requests(status, before, limit)
        return [self._filled(r) for r in found]

    def _open(self, number: int) -> MergeRequest:
        request = self.get(number)
        if request.status is not MrStatus.OPEN:
            raise ConflictError(f"merge request #{number} is {request.status.value}")
        return request

    def approve(self, number: int, approver: str | None) -> MergeRequest:
        request = self._open(number)
        if not approver:
            raise InvalidInput("an approval needs the approving principal's name")
        check_text(approver, "the approver", self.limits.max_property_value_bytes,
                   "max_property_value_bytes")
        if approver == request.author:
            raise InvalidInput(f"{approver!r} opened merge request #{number}: its author "
                               "cannot approve it")
        if request.source_head is None:
            raise ConflictError(f"the source branch {request.source!r} no longer exists")
        with self.storage.writing() as tx:
            tx.approve_merge_request(number, approver, request.source_head,
                                     datetime.now(timezone.utc))
        return self.get(number)

    def merge(self, number: int, author: str | None, message: str | None) -> MergeResult:
        """Merge the approved source head through the merge path; `ProtectedBranch` when
        the target needs more approvals of that head."""
        request = self._open(number)
        if request.source_head is None:
            raise ConflictError(f"the source branch {request.source!r} no longer exists")
        if not request.approved:
            raise approvals_error(request.target, request.required_approvals,
                                  len(request.valid_approvals))
        options = MergeOptions(
            author=author, message=message or f"Merge request #{number}: {request.title}",
            properties={MERGE_REQUEST_PROPERTY: str(number)})
        result = self._merge(request.source_head, request.target, options)
        with self.storage.writing() as tx:
            tx.set_merge_request_status(number, MrStatus.OPEN, MrStatus.MERGED,
                                        datetime.now(timezone.utc), result.new_head,
                                        request.source_head)
        return result

    def close(self, number: int) -> MergeRequest:
        self._open(number)
        with self.storage.writing() as tx:
            if not tx.set_merge_request_status(number, MrStatus.OPEN, MrStatus.CLOSED,
                                               datetime.now(timezone.utc)):
                raise ConflictError(f"merge request #{number} changed meanwhile")
        return self.get(number)

    def set_required(self, branch: str, required: int) -> None:
        required = check_required(required)
        with self.storage.writing() as tx:
            if branch not in tx.protected_branches():
                raise InvalidInput(f"branch {branch!r} is not protected: approvals are "
                                   "required of protected branches only")
            tx.set_required_approvals(branch, required)
