"""`RestVersionStore`: the public `VersionStore` interface over a server's `/api/v1`, a
sibling of `VersionControl` (which runs the algorithms in-process).

So `spark_lakeversion.connect("http://host:19120")` gives the same handles, the same typed
errors and the same results as a local store. Transport failures are told apart the httpx
way: a request that never reached the server is a `ServerError` (safe to retry); a write
whose answer was lost is `CommitOutcomeUnknown` (re-read before retrying).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from spark_lakeversion.auth.tokens import check_token
from spark_lakeversion.errors import (
    CommitOutcomeUnknown,
    InvalidInput,
    LakeVersionError,
    ServerError,
    TooLarge,
    Unauthorized,
)
from spark_lakeversion.limits import Limits, invalid_unicode_path
from spark_lakeversion.model import (
    MAX_AUDIT_RECORDS,
    AuditRecord,
    CheckReport,
    CheckRun,
    CheckSpec,
    Commit,
    Content,
    Delete,
    DiffEntry,
    GcState,
    Key,
    KeyLike,
    MergeRequest,
    MergeResult,
    MrStatus,
    Put,
    Ref,
    ReflogEntry,
    RefType,
    ResolvedRef,
)
from spark_lakeversion.versioning.interface import (
    TABLE_STATES_PAGE,
    LogPage,
    TableStatesPage,
    VersionStore,
)
from spark_lakeversion.versioning.options import MergeOptions
from spark_lakeversion.versioning.requests import (
    DEFAULT_BRANCH,
    CommitRequest,
    PickRequest,
    RefAssign,
    RefCreate,
    RefDelete,
    RollbackRequest,
)
from spark_lakeversion.versioning.wire import error_from_json

if TYPE_CHECKING:
    from spark_lakeversion.rows.page import RowDiffPage


class RestVersionStore(VersionStore):
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0, *,
                 limits: Limits | None = None) -> None:
        """`token` defaults to `$LAKEVERSION_TOKEN` (what `lakeversion serve --token` checks);
        the server holds commits to its own limits (and opens files with its own FileIO),
        `limits` only describe them to this client."""
        self._configure(limits, None)
        token = token or os.environ.get("LAKEVERSION_TOKEN") or None
        if token is not None:
            check_token(token, "the token (LAKEVERSION_TOKEN)")
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url + "/api/v1", headers=headers,
                                  timeout=timeout)

    # ---- transport ----------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        writing = method != "GET"
        # ASCII JSON: a lone surrogate travels as its escape and the server refuses it (400)
        content = None if body is None else json.dumps(body).encode()
        sent = {**(headers or {}), **({"content-type": "application/json"} if content else {})}
        try:
            response = self._http.request(method, path, params=params, content=content,
                                          headers=sent)
        except UnicodeEncodeError:  # in a query parameter: never sent
            bad = [k for k, v in (params or {}).items() if invalid_unicode_path(v) is not None]
            raise InvalidInput(f"{', '.join(bad) or 'a parameter'} is not valid Unicode "
                               f"(lone surrogate); {method} {path} was not sent") from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServerError(f"cannot reach {self.url}: {exc}") from exc
        except httpx.HTTPError as exc:
            if writing:
                raise CommitOutcomeUnknown(
                    f"{method} {path} to {self.url} failed after sending ({exc}): "
                    "re-read the branch before retrying") from exc
            raise ServerError(f"{method} {path} to {self.url} failed: {exc}") from exc
        if response.status_code < 400:
            if (headers or {}).get("accept", "").startswith("application/vnd.apache.arrow"):
                return response.content
            return response.json() if response.content else None
        raise _error_from(response)

    def close(self) -> None:
        self._http.close()

    # ---- refs -------------------------------------------------------------------------
    def list_refs(self, type: RefType | None = None) -> list[Ref]:
        params = {"type": RefType(type).value} if type else None
        return [Ref.from_dict(r) for r in self._call("GET", "/refs", params=params)["refs"]]

    def get_ref(self, name: str) -> Ref:
        return Ref.from_dict(self._call("GET", "/refs/get", params={"name": name}))

    def create_ref_with(self, request: RefCreate) -> Ref:
        body = {"name": request.name, "type": RefType(request.type).value,
                "from": request.from_ref}
        return Ref.from_dict(self._call("POST", "/refs", body=body))

    def delete_ref_with(self, request: RefDelete) -> None:
        if not request.allow_protected:  # the server decides it, from the token's grants
            raise InvalidInput("allow_protected is the server's to decide over HTTP: a forced "
                               "delete of a protected branch needs admin on it")
        self._call("POST", "/refs/delete", body={
            "name": request.name, "type": RefType(request.type).value if request.type else None,
            "expected_head": request.expected_head, "force": request.force})

    def assign_ref_with(self, request: RefAssign) -> Ref:
        return Ref.from_dict(self._call("POST", "/refs/assign", body={
            "name": request.name, "to": request.to, "expected_head": request.expected_head,
            "force": request.force}))

    # ---- merge gates ----------------------------------------------------------------------
    def protect_branch(self, name: str, require_approvals: int | None = None) -> bool:
        body: dict[str, Any] = {"name": name}
        if require_approvals is not None:
            body["require_approvals"] = require_approvals
        return bool(self._call("POST", "/branches/protect", body=body)["changed"])

    def required_approvals(self) -> dict[str, int]:
        found = self._call("GET", "/protected-branches").get("required_approvals") or {}
        return {str(b): int(n) for b, n in found.items()}

    def unprotect_branch(self, name: str) -> bool:
        return bool(self._call("POST", "/branches/unprotect", body={"name": name})["changed"])

    def protected_branches(self) -> set[str]:
        return set(self._call("GET", "/protected-branches")["branches"])

    def add_check(self, spec: CheckSpec, allow_missing: bool = False) -> CheckSpec:
        body = {**spec.to_dict(), **({"allow_missing": True} if allow_missing else {})}
        return CheckSpec.from_dict(self._call("POST", "/checks", body=body))

    def test_check(self, branch: str, name: str, source: str | None = None) -> CheckReport:
        return CheckReport.from_dict(self._call("POST", "/checks/test", body={
            "branch": branch, "name": name, "source": source}))

    def remove_check(self, branch: str, name: str) -> bool:
        return bool(self._call("POST", "/checks/delete",
                               body={"branch": branch, "name": name})["deleted"])

    def list_checks(self, branch: str | None = None) -> list[CheckSpec]:
        params = {"branch": branch} if branch is not None else None
        return [CheckSpec.from_dict(c) for c in self._call("GET", "/checks",
                                                           params=params)["checks"]]

    def check_runs(self, branch: str | None = None, limit: int = 50) -> list[CheckRun]:
        params: dict[str, Any] = {"limit": limit}
        if branch is not None:
            params["branch"] = branch
        return [CheckRun.from_dict(r) for r in self._call("GET", "/check-runs",
                                                          params=params)["runs"]]

    def preview_commits(self, since: datetime) -> list[str]:
        return list(self._call("GET", "/previews",
                               params={"since": since.isoformat()})["commits"])

    def resolve(self, expression: str) -> ResolvedRef:
        data = self._call("GET", "/resolve", params={"ref": expression})
        return ResolvedRef(data["expression"], data["commit_id"], data["branch"])

    # ---- commits and contents ---------------------------------------------------------------
    def commit_with(self, request: CommitRequest) -> Commit:
        ops = []
        for op in request.operations:
            if isinstance(op, Put):
                ops.append({"op": "put", "key": list(Key.of(op.key).elements),
                            "content": op.content.to_dict()})
            elif isinstance(op, Delete):
                ops.append({"op": "delete", "key": list(Key.of(op.key).elements)})
            else:
                raise InvalidInput(f"unknown operation {op!r}: use Put or Delete")
        body: dict[str, Any] = {
            "branch": request.branch, "operations": ops, "message": request.message,
            "author": request.author, "properties": dict(request.properties or {}),
            "expected_head": request.expected_head}
        if request.expected_gc_epoch is not None:
            body["expected_gc_epoch"] = request.expected_gc_epoch
        return Commit.from_dict(self._call("POST", "/commits", body=body))

    def get_commit(self, commit_id: str) -> Commit:
        return Commit.from_dict(self._call("GET", f"/commits/{commit_id}"))

    def log(self, ref: str, *, key: KeyLike | None = None, limit: int = 50,
            page_token: str | None = None) -> LogPage:
        params: dict[str, Any] = {"ref": ref, "limit": limit}
        if key is not None:
            params["key"] = str(Key.of(key))
        if page_token:
            params["page_token"] = page_token
        data = self._call("GET", "/log", params=params)
        return LogPage([Commit.from_dict(c) for c in data["commits"]], data["next_page_token"])

    def get_contents(self, ref: str, keys: Iterable[KeyLike]) -> dict[Key, Content]:
        body = {"ref": ref, "keys": [list(Key.of(k).elements) for k in keys]}
        data = self._call("POST", "/contents/lookup", body=body)
        return {Key(tuple(e["elements"])): Content.from_dict(e["content"])
                for e in data["entries"]}

    def list_keys(self, ref: str, prefix: KeyLike | None = None) -> list[tuple[Key, Content]]:
        params: dict[str, Any] = {"ref": ref}
        if prefix is not None:
            params["prefix"] = str(Key.of(prefix))
        data = self._call("GET", "/contents", params=params)
        return [(Key(tuple(e["elements"])), Content.from_dict(e["content"]))
                for e in data["entries"]]

    def diff(self, from_ref: str, to_ref: str) -> list[DiffEntry]:
        data = self._call("GET", "/diff", params={"from": from_ref, "to": to_ref})
        return [DiffEntry.from_dict(d) for d in data["diffs"]]

    def diff_rows(self, from_ref: str, to_ref: str, key: KeyLike, *,
                  columns: Sequence[str] | None = None, limit: int | None = None,
                  page_token: str | None = None, summary: bool = False) -> RowDiffPage:
        """One page as an Arrow IPC stream (the table's own types); the server caps a page
        at its `MAX_ROW_PAGE` rows."""
        from spark_lakeversion.rows.page import ARROW_STREAM, RowDiffPage

        params: dict[str, Any] = {"from": from_ref, "to": to_ref, "table": str(Key.of(key)),
                                  "summary": "true" if summary else "false"}
        if columns is not None:
            params["columns"] = ",".join(columns)
        if limit is not None:
            params["limit"] = limit
        if page_token:
            params["page_token"] = page_token
        data = self._call("GET", "/diff/rows", params=params, headers={"accept": ARROW_STREAM})
        return RowDiffPage.from_ipc(data)

    def plan_row_diff(self, from_ref: str, to_ref: str, key: KeyLike, *,
                      columns: Sequence[str] | None = None, limit: int | None = None,
                      summary: bool = False, dialect: str = "spark") -> dict[str, Any]:
        params: dict[str, Any] = {"from": from_ref, "to": to_ref, "table": str(Key.of(key)),
                                  "summary": "true" if summary else "false",
                                  "dialect": dialect}
        if columns is not None:
            params["columns"] = ",".join(columns)
        if limit is not None:
            params["limit"] = limit
        return self._call("GET", "/diff/rows/plan", params=params)  # type: ignore[no-any-return]

    # ---- merging ---------------------------------------------------------------------
    def merge_base(self, a: str, b: str) -> str | None:
        data = self._call("GET", "/merge-base", params={"a": a, "b": b})
        return data["commit_id"]  # type: ignore[no-any-return]

    # ---- merge requests -------------------------------------------------------------------
    def open_merge_request(self, source: str, target: str = DEFAULT_BRANCH, *, title: str,
                           description: str = "", author: str | None = None) -> MergeRequest:
        return MergeRequest.from_dict(self._call("POST", "/merge-requests", body={
            "source": source, "target": target, "title": title,
            "description": description}, headers=_author(author)))

    def list_merge_requests(self, status: MrStatus | None = None, before: int | None = None,
                            limit: int = 50) -> list[MergeRequest]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = MrStatus(status).value
        if before is not None:
            params["before"] = before
        return [MergeRequest.from_dict(r) for r in self._call(
            "GET", "/merge-requests", params=params)["merge_requests"]]

    def get_merge_request(self, number: int) -> MergeRequest:
        return MergeRequest.from_dict(self._call("GET", f"/merge-requests/{int(number)}"))

    def approve_merge_request(self, number: int, approver: str | None = None) -> MergeRequest:
        return MergeRequest.from_dict(self._call(
            "POST", f"/merge-requests/{int(number)}/approve", body={"approver": approver}))

    def merge_merge_request(self, number: int, *, author: str | None = None,
                            message: str | None = None) -> MergeResult:
        return MergeResult.from_dict(self._call(
            "POST", f"/merge-requests/{int(number)}/merge", body={"message": message},
            headers=_author(author)))

    def close_merge_request(self, number: int) -> MergeRequest:
        return MergeRequest.from_dict(self._call("POST", f"/merge-requests/{int(number)}/close"))

    def merge_with(self, source: str, target: str, options: MergeOptions) -> MergeResult:
        body = {"source": source, "target": target, **options.to_dict()}
        return MergeResult.from_dict(self._call("POST", "/merge", body=body))

    def pick_with(self, request: PickRequest) -> MergeResult:
        body: dict[str, Any] = {"branch": request.onto, "dry_run": request.dry_run,
                                "expected_head": request.expected_head}
        if request.kind == "revert":
            path, body["commit"] = "/revert", request.commit_ids[0]
        else:
            path, body["commits"] = "/cherry-pick", list(request.commit_ids)
        return MergeResult.from_dict(self._call("POST", path, body=body,
                                                headers=_author(request.author)))

    def rollback_table_with(self, request: RollbackRequest) -> Commit:
        return Commit.from_dict(self._call("POST", "/rollback", body={
            "branch": request.branch, "table": str(Key.of(request.key)), "to": request.to,
            "message": request.message, "expected_head": request.expected_head,
            "properties": dict(request.properties or {})}, headers=_author(request.author)))

    # ---- gc ------------------------------------------------------------------------------
    def gc_state(self) -> GcState:
        return GcState.from_dict(self._call("GET", "/gc/state"))

    def reflog(self, since: datetime) -> list[ReflogEntry]:
        data = self._call("GET", "/reflog", params={"since": since.isoformat()})
        return [ReflogEntry.from_dict(e) for e in data["entries"]]

    def table_states(self, page_token: str | None = None,
                     limit: int = TABLE_STATES_PAGE) -> TableStatesPage:
        params: dict[str, Any] = {"limit": limit}
        if page_token is not None:
            params["page_token"] = page_token
        data = self._call("GET", "/table-states", params=params)
        return TableStatesPage([Content.from_dict(c) for c in data["states"]],
                               data["next_page_token"])

    def begin_gc(self, cutoff: datetime, retained_since: datetime) -> GcState:
        raise InvalidInput("gc over HTTP runs on the server (POST /api/v1/gc); it records "
                           "its own runs")

    def gc_on_server(self, *, older_than: timedelta, keep_commits_since: timedelta,
                     dry_run: bool) -> dict[str, Any]:
        """`POST /api/v1/gc`: gc runs on the server, with its roots (`gc.collect.GcOnServer`)."""
        return dict(self._call("POST", "/gc", body={
            "older_than": older_than.total_seconds(),
            "keep_commits_since": keep_commits_since.total_seconds(), "dry_run": dry_run}))

    # ---- audit trail ---------------------------------------------------------------------
    def audit(self, since: datetime | None = None, principal: str | None = None,
              limit: int = MAX_AUDIT_RECORDS) -> list[AuditRecord]:
        """`GET /api/v1/audit` (admin on every ref)."""
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since.isoformat()
        if principal is not None:
            params["principal"] = principal
        data = self._call("GET", "/audit", params=params)
        return [AuditRecord.from_dict(r) for r in data["records"]]


def _author(author: str | None) -> dict[str, str]:
    return {"X-Lakeversion-Author": author} if author else {}


def _error_from(response: httpx.Response) -> LakeVersionError:
    """Rebuild the server's typed error (our `/api/v1` error body) on the client side."""
    try:
        error = response.json()["error"]
        code, message = error.get("code", ""), error.get("message", response.text)
    except (ValueError, KeyError, TypeError, AttributeError):
        text = f"HTTP {response.status_code} from server: {response.text[:500]}"
        if response.status_code == 413:  # e.g. a proxy's own answer to an oversized body
            return TooLarge(text)
        if 400 <= response.status_code < 500:  # the server refused the request as sent
            return InvalidInput(text)
        return ServerError(text)
    if response.status_code == 401:
        return Unauthorized(f"unauthorized: {message}")  # no principal: a bad token
    return error_from_json(code, message, error, default=ServerError)
