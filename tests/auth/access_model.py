"""The reference model of README's access rules (*Access control*; *Merge gates*,
**Protection**) that `test_access_model.py` holds every surface to. It lives in the tests
and imports nothing from the product: grants are globs over ref names (matched here by our
own `glob_match`), each operation's rule is a list of steps checked in order, and the first
one that fails is the refusal the server must answer.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PERMISSIONS = ("read", "write", "create", "delete", "merge", "admin")
BRANCHES = ("main", "etl-1", "etl-2", "etl-x9", "team/a", "team/b/c", "t-a", "tb")
TAGS = ("v1", "rel-1", "team/v2")  # names never shared with a branch: one kind per name
GLOBS = ("*", "main", "etl-*", "etl-?", "team/*", "team/*/c", "t-[ab]", "t?", "*-1", "rel-*",
         "v?", "ma*", "*a", "*/*")
Grants = tuple[tuple[str, frozenset[str]], ...]
#: one step of an operation's rule, checked in order: ("need", permission, ref) refuses with
#: Forbidden, ("exists", ref) with RefNotFound, ("absent", ref) with AlreadyExists,
#: ("unprotected", branch) with ProtectedBranch, ("resolves", expression) with RefNotFound,
#: ("published", branch, expression) with ProtectedBranch, ("merged", ref) with
#: UnmergedBranch, ("approvals", branch) with ProtectedBranch (a direct merge or revert
#: into a branch requiring approvals); of merge request n: ("open", n) and ("source", n)
#: with ConflictError (not open; its source is gone), ("other", n, who) with InvalidInput
#: (its author approving), ("approved", n) with ProtectedBranch
Step = tuple[str, ...]
Verdict = tuple[str, ...]


def glob_match(glob: str, name: str) -> bool:
    """README: `*` any characters (`/` included), `?` one, `[ab]` a set; the whole name."""
    if not glob:
        return not name
    head = glob[0]
    if head == "*":
        return any(glob_match(glob[1:], name[i:]) for i in range(len(name) + 1))
    if not name:
        return False
    if head == "[":
        end = glob.index("]", 1)
        return name[0] in glob[1:end] and glob_match(glob[end + 1:], name[1:])
    return head in ("?", name[0]) and glob_match(glob[1:], name[1:])


@dataclass
class Request:
    """A merge request as the model sees it: `approvals` maps each approver to the source
    head they approved (observed when they approved)."""

    source: str
    target: str
    author: str
    status: str = "open"
    approvals: dict[str, str] = field(default_factory=dict)


@dataclass
class Model:
    grants: Mapping[str, Grants]
    refs: dict[str, str] = field(default_factory=lambda: {"main": "BRANCH"})
    protected: set[str] = field(default_factory=set)
    #: ref -> the commits of its history (observed data, not a rule), for reads by commit id
    history: Mapping[str, set[str]] = field(default_factory=dict)
    #: observed data too: each ref's head, what an expression resolves to (None: nothing),
    #: each branch's first-parent chain from its head
    heads: Mapping[str, str] = field(default_factory=dict)
    resolved: Mapping[str, str | None] = field(default_factory=dict)
    chains: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: what the model tracks itself: every head each branch held since it was created
    held: dict[str, set[str]] = field(default_factory=dict)
    #: approvals a protected branch requires (README: `--require-approvals N`), and the
    #: merge requests of this example by number
    required: dict[str, int] = field(default_factory=dict)
    requests: dict[int, Request] = field(default_factory=dict)

    def valid_approvals(self, number: int) -> set[str]:
        """Approvals of the source's current head (observed): a moved source voids them."""
        request = self.requests[number]
        head = self.heads.get(request.source)
        return {who for who, seen in request.approvals.items() if seen == head}

    def may(self, who: str, permission: str, ref: str) -> bool:
        """A grant whose glob matches `ref` gives `permission`, or `admin` (every one)."""
        return any(glob_match(glob, ref) and (permission in allow or "admin" in allow)
                   for glob, allow in self.grants[who])

    def may_read_commit(self, who: str, commit: str) -> bool:
        """`read` on `*` (the grant's glob itself), or on a ref whose history holds it."""
        return any(glob == "*" and allow & {"read", "admin"} for glob, allow in self.grants[who]
                   ) or any(self.may(who, "read", ref) and commit in self.history.get(ref, ())
                            for ref in self.refs)

    def published(self, branch: str, commit: str | None) -> bool:
        """README *Published states*: on the branch's first-parent chain, and once its head."""
        return commit in self.chains.get(branch, ()) and commit in self.held.get(branch, ())

    def unmerged(self, name: str) -> bool:
        """A branch whose head no other ref's history holds (then it holds commits only it
        holds; git's `-d` refusal)."""
        return self.refs.get(name) == "BRANCH" and not any(
            self.heads.get(name) in commits for ref, commits in self.history.items()
            if ref != name)

    def verdict(self, who: str, steps: Sequence[Step]) -> Verdict:
        for kind, *args in steps:
            if kind == "need" and not self.may(who, args[0], args[1]):
                return ("Forbidden", args[0], f"ref {args[1]!r}")
            if kind == "commit" and not self.may_read_commit(who, args[0]):
                return ("Forbidden", "read", f"commit {args[0]}")
            if kind == "exists" and args[0] not in self.refs:
                return ("RefNotFound",)
            if kind == "absent" and args[0] in self.refs:
                return ("AlreadyExists",)
            if kind == "unprotected" and args[0] in self.protected:
                return ("ProtectedBranch",)
            if kind == "resolves" and self.resolved.get(args[0]) is None:
                return ("RefNotFound",)
            if kind == "published" and args[0] in self.protected and not self.published(
                    args[0], self.resolved.get(args[1])):
                return ("ProtectedBranch",)
            if kind == "merged" and self.unmerged(args[0]):
                return ("UnmergedBranch",)
            if kind == "approvals" and self.required.get(args[0], 0):
                return ("ProtectedBranch",)
            if kind == "open" and self.requests[int(args[0])].status != "open":
                return ("ConflictError",)
            if kind == "source" and self.requests[int(args[0])].source not in self.refs:
                return ("ConflictError",)
            if kind == "other" and self.requests[int(args[0])].author == args[1]:
                return ("InvalidInput",)
            if kind == "approved" and len(self.valid_approvals(int(args[0]))) < \
                    self.required.get(self.requests[int(args[0])].target, 0):
                return ("ProtectedBranch",)
        return ("ok",)

    def readable(self, who: str, kind: str) -> set[str]:
        """Listings show only refs the principal may read."""
        return {n for n, k in self.refs.items() if k == kind and self.may(who, "read", n)}


def need(permission: str, ref: str) -> Step:
    return ("need", permission, ref)


def is_commit_id(expression: str) -> bool:
    return len(expression) == 40 and set(expression) <= set("0123456789abcdef")


def reads(expression: str) -> list[Step]:
    """README: `R~N` and `R@{N}` need `read` on R (and R must exist); a commit id needs the
    commit rule (`Model.may_read_commit`)."""
    if is_commit_id(expression):
        return [("commit", expression)]
    base = re.split(r"[~@]", expression, maxsplit=1)[0]
    return [need("read", base), ("exists", base)]


# README's rule per operation, on the server (`/api/v1`, which the Python API and the CLI
# call). README: clients that read before they write need `read` as well (the CLI's delete
# and reset, Python's `Branch.reset`; Iceberg REST clients load the table first):
# `pre_read` puts that read, and the ref's existence, first.
def pre_read(ref: str, surface: str, surfaces: Sequence[str]) -> list[Step]:
    return [need("read", ref), ("exists", ref)] if surface in surfaces else []


def create_rule(name: str, source: str) -> list[Step]:
    return [need("create", name), *reads(source), ("absent", name)]


def delete_rule(name: str, force: bool, protected: bool, surface: str) -> list[Step]:
    """`delete`, git's `-d`: a branch holding commits no other ref holds is refused
    (`UnmergedBranch`), and so is a protected one, unless forced (`-D`); forcing needs
    `delete` alone on an unprotected branch, and `admin` too on a protected one."""
    return (pre_read(name, surface, ("cli",)) + [need("delete", name)]
            + ([need("admin", name)] if force and protected else [])
            + [("exists", name)]
            + ([] if force else [("unprotected", name), ("merged", name)]))


def reset_rule(branch: str, to: str, force: bool, surface: str) -> list[Step]:
    """A reset is a write to the branch and a read of where it goes; forced: admin, and a
    protected branch goes back only to a published state (a whole-branch rollback)."""
    return (pre_read(branch, surface, ("cli", "python")) + [need("write", branch)]
            + ([need("admin", branch)] if force else [])
            + reads(to) + [("exists", branch)]
            + ([("published", branch, to)] if force else [("unprotected", branch)]))


def rollback_rule(branch: str, to: str) -> list[Step]:
    """A table rollback is a write to the branch and a read of `to`; on a protected branch
    it is a recovery: only a published state (no checks run)."""
    return [need("write", branch), *reads(to), ("exists", branch), ("resolves", to),
            ("published", branch, to)]


def revert_rule(commit: str, branch: str, dry_run: bool, surface: str) -> list[Step]:
    """`write` on the branch (a dry run: `read`) and a read of the commit; a protected
    branch takes it through its gate like a merge, and one requiring approvals refuses it
    (its new state takes a merge request). Python and the CLI resolve the commit first (a
    read)."""
    return ((reads(commit) if surface in ("python", "cli") else [])
            + [need("read" if dry_run else "write", branch), *reads(commit),
               ("exists", branch)] + ([] if dry_run else [("approvals", branch)]))


def commit_rule(branch: str, surface: str) -> list[Step]:
    """A table commit is a write; a protected branch refuses it from every client."""
    return (pre_read(branch, surface, ("iceberg",))
            + [need("write", branch), ("exists", branch), ("unprotected", branch)])


def merge_rule(source: str, target: str, dry_run: bool) -> list[Step]:
    """`merge` on the target (a dry run: `read`), `read` on the source; merges are the way
    into a protected branch; into one requiring approvals, only a merge request's."""
    return [need("read" if dry_run else "merge", target), *reads(source), ("exists", target)
            ] + ([] if dry_run else [("approvals", target)])


def open_request_rule(source: str, target: str) -> list[Step]:
    """`read` on the target and the source, both existing branches."""
    return [need("read", target), need("read", source), ("exists", source), ("exists", target)]


def request_rule(number: int, request_: Request, action: str, who: str) -> list[Step]:
    """Approve, merge or close request `number`: `merge` on its target and `read` on its
    source, an open request; an approval by another than its author, of a source that
    exists; a merge of a source that exists, approved enough, into a target that exists."""
    n = str(number)
    steps = [need("merge", request_.target), need("read", request_.source), ("open", n)]
    if action == "approve":
        steps += [("other", n, who), ("source", n)]
    elif action == "merge":
        steps += [("source", n), ("approved", n), ("exists", request_.target)]
    return steps


def read_rule(expression: str) -> list[Step]:
    return reads(expression)


def protect_rule(branch: str) -> list[Step]:
    """Protect and unprotect are admin actions on the branch."""
    return [need("admin", branch), ("exists", branch)]


# ---- principals: a seeded random pool, plus the fixed corners --------------------------
def principal_pool(seed: int = 20, size: int = 12) -> dict[str, Grants]:
    """Fixed corners (all-powerful, nothing, read-only, everything but admin, README's
    `etl`, refs made and removed without reading them, a team's admin) and `size`
    principals with 1-4 random grants of 1-4 random permissions."""
    rng = random.Random(seed)
    pool: dict[str, Grants] = {
        "root": (("*", frozenset({"admin"})),),
        "nobody": (),
        "reader": (("*", frozenset({"read"})),),
        "writer": (("*", frozenset(PERMISSIONS) - {"admin"}),),
        "etl": (("etl-*", frozenset({"read", "write", "create", "delete"})),
                ("main", frozenset({"read", "merge"}))),
        "maker": (("*", frozenset({"create", "delete"})), ("main", frozenset({"read"}))),
        "steward": (("etl-*", frozenset({"admin"})), ("*", frozenset({"read"}))),
    }
    weights = (6, 4, 3, 3, 3, 1)  # read is common; admin is rare (it gives every permission)
    for i in range(size):
        pool[f"p{i}"] = tuple(
            (rng.choice(GLOBS), frozenset(rng.choices(PERMISSIONS, weights, k=rng.randint(1, 4))))
            for _ in range(rng.randint(1, 4)))
    return pool


PRINCIPALS = principal_pool()
