"""The UI's pages of review and oversight: sign-in, merge requests (the compare view of
target...source, live, with its check runs and approvals), check runs and the audit trail."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from starlette.responses import RedirectResponse, Response

from spark_lakeversion.auth.grants import EVERY_REF, Permission
from spark_lakeversion.errors import ChecksFailed, Forbidden, InvalidInput
from spark_lakeversion.model import MrStatus
from spark_lakeversion.server.ui.compare import compare
from spark_lakeversion.server.ui.render import Page, View

PAGE = 50
#: the most check runs or audit records the pages reach
MAX_RECORDS = 1000


def _status(view: View) -> MrStatus | None:
    raw = view.query.get("status") or "open"
    if raw == "all":
        return None
    try:
        return MrStatus(raw)
    except ValueError:
        raise InvalidInput("status must be open, merged, closed or all") from None


def mr_list(view: View) -> Page:
    status = _status(view)
    before = view.number("before", 0, 0, 10**12) or None
    found = view.store.list_merge_requests(status, before, PAGE)
    more = len(found) == PAGE and found[-1].number > 1
    return Page("mr_list.html", {"requests": found, "status": view.query.get("status")
                                 or "open", "next_before": found[-1].number if more else None})


def open_mr(view: View) -> Response:
    request = view.store.open_merge_request(
        view.field("source"), view.field("target", "main"), title=view.field("title"),
        description=view.field("description", ""))
    return RedirectResponse(f"/ui/mr/{request.number}", 303)


def _number(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,15}", text):
        raise InvalidInput(f"a merge request number is a whole number, not {text[:32]!r}")
    return int(text)


def mr_page(view: View, number: str, failure: ChecksFailed | None = None,
            run_checks: bool = False) -> Page:
    """The request; its compare view plans the merge only, unless `run_checks`."""
    store = view.store
    request = store.get_merge_request(_number(number))
    comparison = compare(view, request.target, request.source, run_checks) \
        if request.status is MrStatus.OPEN else None
    sources = {request.source, request.source_head}
    runs = [r for r in store.check_runs(request.target, 200) if r.source in sources]
    me = view.principal.name
    may_merge = view.may("merge", request.target)
    is_open = request.status is MrStatus.OPEN
    approved_now = any(a.principal == me for a in request.valid_approvals)
    return Page("mr.html", {
        "r": request, "c": comparison, "runs": runs[:PAGE],
        "failure": list(failure.reports) if failure else None,
        "failure_message": failure.message if failure else "",
        "may_approve": is_open and may_merge and me != request.author and not approved_now,
        "may_merge": is_open and may_merge and request.approved
        and comparison is not None and comparison.clean,
        "may_close": is_open and may_merge,
        "is_author": me == request.author}, failure.http_status if failure else 200)


def run_checks(view: View, number: str) -> Page:
    """The request's merge, dry run through the gate (its check runs are recorded)."""
    return mr_page(view, number, run_checks=True)


def approve(view: View, number: str) -> Response:
    view.store.approve_merge_request(_number(number))
    return RedirectResponse(f"/ui/mr/{_number(number)}", 303)


def merge(view: View, number: str) -> Page | Response:
    try:
        view.store.merge_merge_request(_number(number))
    except ChecksFailed as exc:  # the request again, with every check's report
        return mr_page(view, number, exc)
    return RedirectResponse(f"/ui/mr/{_number(number)}", 303)


def close(view: View, number: str) -> Response:
    view.store.close_merge_request(_number(number))
    return RedirectResponse(f"/ui/mr/{_number(number)}", 303)


def checks_page(view: View) -> Page:
    page_no = view.number("page", 0, 0, MAX_RECORDS // PAGE)
    branch = (view.query.get("branch") or "").strip() or None
    runs = view.store.check_runs(branch, min(MAX_RECORDS, (page_no + 1) * PAGE + 1))
    return Page("checks.html", {"runs": runs[page_no * PAGE:(page_no + 1) * PAGE],
                                "page": page_no, "branch": branch or "",
                                "more": len(runs) > (page_no + 1) * PAGE})


def _since(text: str) -> datetime:
    units = {"h": 3600, "d": 86400, "w": 7 * 86400}
    if text and text[:-1].isdigit() and text[-1] in units:
        return datetime.now(timezone.utc) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("since is a duration such as 1d or 12h, or an ISO-8601 time") \
            from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def audit_page(view: View) -> Page:
    if not view.principal.may_everywhere(Permission.ADMIN):
        raise Forbidden(f"principal {view.principal.name!r} lacks 'admin' on every ref "
                        f"({EVERY_REF!r}), which the audit trail needs")
    since_text = (view.query.get("since") or "7d").strip()
    who = (view.query.get("principal") or "").strip() or None
    operation = (view.query.get("operation") or "").strip()
    page_no = view.number("page", 0, 0, MAX_RECORDS // PAGE)
    records = list(reversed(view.store.audit(_since(since_text), who, MAX_RECORDS)))
    if operation:
        records = [r for r in records if r.operation == operation]
    return Page("audit.html", {"records": records[page_no * PAGE:(page_no + 1) * PAGE],
                               "page": page_no, "since": since_text, "principal": who or "",
                               "operation": operation,
                               "more": len(records) > (page_no + 1) * PAGE})
