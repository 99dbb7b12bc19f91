"""The UI's pages over refs and history: refs, the catalog at a ref, a table at a ref, the
log, a commit, and the compare view with its merge. Each handler reads and writes only
through the principal's `AccessControlledStore`: the UI adds no behaviour of its own."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from spark_lakeversion.errors import ChecksFailed, InvalidInput, KeyNotFound
from spark_lakeversion.model import Key, RefType
from spark_lakeversion.server.ui.compare import compare, table_changes
from spark_lakeversion.server.ui.render import Page, View, ref_url, table_url
from spark_lakeversion.server.ui.tables import describe, is_table, kind_of, preview

#: refs, keys and commits one page lists
PAGE = 50
#: ahead/behind counts stop here ("50+")
MAX_COUNT = 50


def _count_until(view: View, ref: str, stop: str | None) -> int:
    """Commits of `ref`'s log before `stop` (at most MAX_COUNT)."""
    count, token = 0, None
    while True:
        page = view.store.log(ref, limit=MAX_COUNT, page_token=token)
        for commit in page.commits:
            if commit.id == stop or count >= MAX_COUNT:
                return count
            count += 1
        token = page.next_page_token
        if not token:
            return count


def refs_page(view: View) -> Page:
    store = view.store
    page_no = view.number("page", 0, 0, 10_000)
    refs = sorted(store.list_refs(), key=lambda r: (r.type.value, r.name))
    shown = refs[page_no * PAGE:(page_no + 1) * PAGE]
    protected = store.protected_branches()
    required = store.required_approvals()
    checks: dict[str, list[str]] = {}
    for check in store.list_checks():
        checks.setdefault(check.branch, []).append(check.name)
    main = next((r for r in refs if r.name == "main"), None)
    rows = []
    for ref in shown:
        head = store.get_commit(ref.head)
        ahead = behind = None
        if main is not None and ref.name != "main":
            base = store.merge_base(ref.head, main.head)
            ahead = _count_until(view, ref.name, base)
            behind = _count_until(view, "main", base)
        rows.append({"ref": ref, "head": head, "ahead": ahead, "behind": behind,
                     "protected": ref.name in protected,
                     "required": required.get(ref.name, 0),
                     "checks": checks.get(ref.name, []),
                     "may_delete": view.may("delete", ref.name)})
    return Page("refs.html", {"rows": rows, "page": page_no,
                              "more": len(refs) > (page_no + 1) * PAGE,
                              "may_create": True})


def create_ref(view: View) -> Response:
    name = view.field("name").strip()
    kind = RefType(view.field("type", "BRANCH").upper()) \
        if view.field("type", "BRANCH").upper() in ("BRANCH", "TAG") else None
    if kind is None:
        raise InvalidInput("type must be branch or tag")
    view.store.create_ref(name, kind, view.field("from", "main").strip() or "main")
    return RedirectResponse(ref_url(name), 303)


def delete_ref(view: View) -> Page | Response:
    name = view.field("name")
    ref = view.store.get_ref(name)
    if view.form.get("confirm") != "yes":
        return Page("confirm_delete.html", {"ref": ref})
    view.store.delete_ref(name, ref.type, expected_head=ref.head,
                          force=view.form.get("force") == "yes")
    return RedirectResponse("/ui/refs", 303)


def go(view: View) -> Response:
    ref = view.field("ref").strip()
    view.store.resolve(ref)  # a typed error for a ref that does not resolve
    return RedirectResponse(ref_url(ref), 303)


def catalog_page(view: View, ref: str) -> Page:
    resolved = view.store.resolve(ref)
    page_no = view.number("page", 0, 0, 100_000)
    entries = view.store.list_keys(ref)
    shown = entries[page_no * PAGE * 2:(page_no + 1) * PAGE * 2]
    items = [{"key": str(k), "namespace": ".".join(k.elements[:-1]),
              "kind": kind_of(c), "table": is_table(c)} for k, c in shown]
    return Page("catalog.html", {"ref": ref, "resolved": resolved, "items": items,
                                 "page": page_no,
                                 "more": len(entries) > (page_no + 1) * PAGE * 2})


def _first_parent_chain(view: View, head: str, limit: int = 500) -> set[str]:
    chain, current = set(), head
    for _ in range(limit):
        chain.add(current)
        commit = view.store.get_commit(current)
        if not commit.parents:
            break
        current = commit.parents[0]
    return chain


def table_page(view: View, ref: str, table: str) -> Page:
    key = Key.of(table)
    store = view.store
    resolved = store.resolve(ref)
    content = store.get_contents(ref, [key]).get(key)
    if content is None:
        raise KeyNotFound(f"{table} does not exist at {ref}")
    offset = view.number("row", 0, 0, 100_000)
    info = describe(content, view.io)
    columns, rows, more = preview(content, view.io, offset) if is_table(content) \
        else ([], [], False)
    log = store.log(ref, key=key, limit=20, page_token=view.query.get("history") or None)
    branch = resolved.branch if resolved.expression == resolved.branch else None
    protected = branch is not None and branch in store.protected_branches()
    chain = _first_parent_chain(view, resolved.commit_id) if protected else set()
    history = [{"commit": c, "may_roll_back": branch is not None
                and view.may("write", branch) and c.id != resolved.commit_id
                and (not protected or c.id in chain)} for c in log.commits]
    return Page("table.html", {"ref": ref, "table": table, "content": content, "info": info,
                               "columns": columns, "rows": rows, "offset": offset,
                               "more": more, "history": history, "branch": branch,
                               "protected": protected, "next_history": log.next_page_token})


def rollback(view: View, ref: str, table: str) -> Response:
    to = view.field("to")
    view.store.rollback_table(ref, Key.of(table), to,
                              message=f"roll back {table} to {to[:12]} (web UI)")
    return RedirectResponse(table_url(ref, table), 303)


def log_page(view: View, ref: str) -> Page:
    table = (view.query.get("table") or "").strip()
    page = view.store.log(ref, key=Key.of(table) if table else None, limit=PAGE,
                          page_token=view.query.get("page_token") or None)
    return Page("log.html", {"ref": ref, "table": table, "commits": page.commits,
                             "next": page.next_page_token})


def commit_page(view: View, commit_id: str) -> Page:
    store = view.store
    commit = store.get_commit(commit_id)
    parent = commit.parents[0] if commit.parents else None
    diffs = store.diff(parent, commit.id) if parent else []
    changes = table_changes(view, parent, commit.id, diffs) if parent else []
    branches = [r.name for r in store.list_refs(RefType.BRANCH)]
    # a branch needing approvals takes a revert through a merge request (the store refuses
    # it there): offer only the branches a revert may land on directly
    required = store.required_approvals()
    revertable = [b for b in branches if view.may("write", b) and not required.get(b)]
    reviewed = {b: n for b, n in required.items() if b in branches}
    return Page("commit.html", {"commit": commit, "parent": parent, "changes": changes,
                                "branches": revertable, "reviewed": reviewed,
                                "may_revert": bool(revertable)})


def revert(view: View, commit_id: str) -> Response:
    branch = view.field("branch")
    view.store.revert(commit_id, branch)
    return RedirectResponse(ref_url(branch) + "/log", 303)


def compare_page(view: View, a: str, b: str, reports: list[dict] | None = None,
                 status: int = 200, run_checks: bool = False) -> Page:
    comparison = compare(view, a, b, run_checks)
    return Page("compare.html", {"c": comparison, "reports": reports,
                                 "may_merge": view.may("merge", a),
                                 "may_read_both": True}, status)


def run_checks(view: View, a: str, b: str) -> Page:
    """The merge's dry run through the gate: its check runs are recorded."""
    return compare_page(view, a, b, run_checks=True)


def merge(view: View, a: str, b: str) -> Page | Response:
    try:
        view.store.merge(b, a, message=f"Merge {b} into {a} (web UI)")
    except ChecksFailed as exc:  # the page again, with every check's report
        return compare_page(view, a, b, list(exc.reports), exc.http_status)
    return RedirectResponse(ref_url(a) + "/log", 303)
