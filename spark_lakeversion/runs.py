"""Transactional runs: a job writes on its own branch, which is merged only if it succeeds.

Two halves live here, because both sides of a run must agree on them:

- the environment contract a run hands to its job (`LAKEVERSION_BRANCH`,
  `LAKEVERSION_SERVER_URL`, `LAKEVERSION_RUN_ID`, `LAKEVERSION_RUN_INPUT`), read back by
  `session()` and `connect()` through `env_branch`, `env_server_url` and `env_properties`;
- `Run`, the context manager behind ``catalog.run(on="main")`` and ``lakeversion run``:
  create the run branch, let the body write to it, merge it into `on` on a clean exit
  (through the ordinary merge, hence through the target's gates), delete it unless asked to
  keep it; on an exception (or a refused merge) keep the branch and re-raise.

Run metadata: the job's own commits carry ``lakeversion.run.id`` and
``lakeversion.run.input`` (Spark jobs through the catalog's ``spark.lakeversion.property.*``
settings, Python clients through `connect()`), and the merge commit carries the run id, its
branch, command and input, so `lakeversion log` on the target shows which run produced
what, and from which state. The input (the head of `on` when the run started) is what
troubleshooting starts from: `find_run_input` finds it again, and a run can start from
it instead of `on`'s head (``lakeversion run --from-inputs RUN_ID``).

Run branch names are built here only (`run_branch_name`, `ref_safe`): they carry nothing
Spark SQL's identifier parser chokes on in ``lv.db@<branch>.t`` (no dots, no colons).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Protocol

from spark_lakeversion.errors import (
    InvalidInput,
    LakeVersionError,
    NotFound,
    ReferenceConflict,
)
from spark_lakeversion.model import Commit, MergeResult, Ref, ResolvedRef

__all__ = ["BRANCH_ENV", "RUN_BRANCH", "RUN_COMMAND", "RUN_ID", "RUN_ID_ENV", "RUN_INPUT",
           "RUN_INPUT_ENV", "Run", "RunBranch", "RunCatalog", "SERVER_ENV", "env_branch",
           "env_properties", "env_server_url", "find_run_input", "iceberg_catalog_properties",
           "new_run_id", "ref_safe", "run_branch_name", "run_environment"]

#: the branch a run's job writes to
BRANCH_ENV = "LAKEVERSION_BRANCH"
#: the server's base URL (its Iceberg REST catalog is at ``$LAKEVERSION_SERVER_URL/iceberg``)
SERVER_ENV = "LAKEVERSION_SERVER_URL"
#: the run's id, stamped on the job's commits
RUN_ID_ENV = "LAKEVERSION_RUN_ID"
#: the commit the run started from, stamped on the job's commits
RUN_INPUT_ENV = "LAKEVERSION_RUN_INPUT"

#: commit properties a run records
RUN_ID = "lakeversion.run.id"
RUN_BRANCH = "lakeversion.run.branch"
RUN_COMMAND = "lakeversion.run.command"
#: the head of the run's `on` branch when it started: the run's inputs
RUN_INPUT = "lakeversion.run.input"
#: how much of a command line a commit keeps (property values have a byte limit)
MAX_COMMAND_CHARS = 2000


class RunBranch(Protocol):
    """What a run needs of a branch handle (the Python API's `Branch` is one): runs sit
    below the API, which builds them (`Catalog.run`), so they name no API class."""

    @property
    def name(self) -> str: ...

    @property
    def head(self) -> Commit: ...

    def exists(self) -> bool: ...

    def get_ref(self) -> Ref: ...

    def ref_for_write(self) -> Ref: ...

    def create(self, from_: str = ...) -> object: ...

    def delete(self, *, expected_head: str | None = None) -> None: ...

    def log(self, *, limit: int | None = None) -> Iterator[Commit]: ...

    def merge_into(self, target: str, *, fast_forward: bool = True,
                   message: str | None = None,
                   properties: Mapping[str, str] | None = None) -> MergeResult: ...


class _Resolvable(Protocol):
    def resolve(self) -> ResolvedRef: ...


class RunCatalog(Protocol):
    """What a run needs of a catalog (the Python API's `Catalog` is one)."""

    def branch(self, name: str) -> RunBranch: ...

    def branches(self) -> Sequence[RunBranch]: ...

    def ref(self, expression: str) -> _Resolvable: ...


def env_branch(default: str = "main") -> str:
    """`$LAKEVERSION_BRANCH` (set by a run for its job), else `default`."""
    return os.environ.get(BRANCH_ENV) or default


def env_server_url() -> str | None:
    return os.environ.get(SERVER_ENV) or None


def env_properties() -> dict[str, str]:
    """Commit properties a job inherits from the run that started it."""
    props = {RUN_ID: os.environ.get(RUN_ID_ENV), RUN_INPUT: os.environ.get(RUN_INPUT_ENV)}
    return {key: value for key, value in props.items() if value}


def iceberg_catalog_properties() -> dict[str, str]:
    """pyiceberg `RestCatalog` properties for a run's job: the run's server and branch, and
    the run id as a commit property. ``RestCatalog("lv", **iceberg_catalog_properties())``."""
    url = env_server_url()
    if not url:
        raise InvalidInput(f"${SERVER_ENV} is not set: not inside `lakeversion run`?")
    props = {"uri": url.rstrip("/") + "/iceberg", "warehouse": env_branch()}
    if env_properties():
        props["header.X-Lakeversion-Properties"] = json.dumps(env_properties())
    return props


def new_run_id() -> str:
    """Sortable and unique enough for names: ``20261126T021800-3f9a1c``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def ref_safe(text: str) -> str:
    """`text` (an Airflow run id such as ``manual__2026-12-06T06:23:16.267591+00:00``) as a
    branch-name part Spark SQL reads unquoted in ``lv.db@etl/<part>.t``: letters, digits,
    ``_`` and ``-`` only (a dot would end the ref); a UTC offset of zero is dropped."""
    text = re.sub(r"(\+00:?00|Z)$", "", text.strip())
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "run"


def run_branch_name(run_id: str, prefix: str = "run") -> str:
    """The one way run branches are named: ``<prefix>/<ref_safe(run_id)>``."""
    return f"{prefix}/{ref_safe(run_id)}"


def run_environment(branch: str, server_url: str, run_id: str,
                    run_input: str | None = None) -> dict[str, str]:
    """The variables a run sets for its job (on top of the caller's environment)."""
    env = {BRANCH_ENV: branch, SERVER_ENV: server_url.rstrip("/"), RUN_ID_ENV: run_id}
    if run_input:
        env[RUN_INPUT_ENV] = run_input
    return env


#: how many commits of each branch `find_run_input` reads, newest first
RUN_SEARCH_DEPTH = 1000
#: what a recorded input must be (properties are client-written: a ref name or an
#: expression there would not name one state)
_COMMIT_ID = re.compile(r"[0-9a-f]{40}")


def find_run_input(catalog: RunCatalog, run_id: str) -> str:
    """The commit run `run_id` started from: the `RUN_INPUT` property of a commit it made
    (the job's, or its merge), on any branch; for a run that committed nothing, the head
    of its kept default branch ``run/<id>``. Only a full commit id counts as an input.
    `NotFound` if no branch knows the run."""
    if not run_id or len(run_id) > 200 or any(c.isspace() for c in run_id):
        raise InvalidInput(f"{run_id!r} is not a run id (e.g. 20261126T021800-3f9a1c)")
    for branch in catalog.branches():
        for commit in catalog.branch(branch.name).log(limit=RUN_SEARCH_DEPTH):
            recorded = commit.properties.get(RUN_INPUT, "")
            if commit.properties.get(RUN_ID) == run_id and _COMMIT_ID.fullmatch(recorded):
                return recorded
    kept = catalog.branch(run_branch_name(run_id))
    if kept.exists():
        head = kept.head
        if RUN_ID not in head.properties:  # the job committed nothing: the head is the input
            return head.id
    raise NotFound(f"no run {run_id!r}: no commit in the last {RUN_SEARCH_DEPTH} of any "
                   "branch carries it (runs record their inputs since lakeversion.run.input)")


class Run:
    """One transactional run on a catalog; see the module docstring.

    After the block: `merge_result` holds the merge (None if the body failed or the checks
    refused it; a conflicting merge's result), `error` what failed, `branch` the run
    branch (`branch_created` once made; deleted after a successful run unless
    `keep_branch`, or if written to after the merge), `base_head` the run's input: the
    target's head when the run started (what an on-failure handler rolls back to), or
    `inputs` if given (a re-run from an earlier run's inputs). Without `publish` nothing
    is merged and the branch is kept.
    """

    def __init__(self, catalog: RunCatalog, on: str = "main", *, branch: str | None = None,
                 keep_branch: bool = False, message: str | None = None,
                 command: str | None = None, properties: Mapping[str, str] | None = None,
                 run_id: str | None = None, inputs: str | None = None,
                 publish: bool = True) -> None:
        from spark_lakeversion.versioning.names import validate_ref_name

        self.catalog = catalog
        self.id = run_id or new_run_id()
        self.on = catalog.branch(on)
        self.branch: RunBranch = catalog.branch(branch or run_branch_name(self.id))
        self.keep_branch = keep_branch
        self.message = message or f"run {self.id}"
        self.command = command
        self.properties = dict(properties or {})
        self.inputs = inputs
        self.publish = publish
        self.base_head: str | None = None
        self.merge_result: MergeResult | None = None
        self.error: BaseException | None = None
        self.branch_created = False
        self.branch_deleted = False
        self._entered = False
        validate_ref_name(self.branch.name)

    @property
    def succeeded(self) -> bool:
        if not self.publish:
            return self._entered and self.error is None
        return self.error is None and self.merge_result is not None \
            and self.merge_result.successful

    def run_properties(self) -> dict[str, str]:
        props = {RUN_ID: self.id, RUN_BRANCH: self.branch.name}
        if self.base_head:
            props[RUN_INPUT] = self.base_head
        if self.command:
            props[RUN_COMMAND] = self.command[:MAX_COMMAND_CHARS]
        return {**self.properties, **props}

    def __enter__(self) -> Run:
        if self._entered:
            raise InvalidInput("a run can be entered only once")
        self._entered = True
        on_head = self.on.ref_for_write().head  # `on` must be a branch even for a re-run
        self.base_head = self.catalog.ref(self.inputs).resolve().commit_id \
            if self.inputs else on_head
        self.branch.create(from_=self.base_head)
        self.branch_created = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc is not None:
            self.error = exc
            return  # keep the branch; the exception propagates
        if not self.publish:
            return  # a re-run to look at: kept, nothing merged
        merged_head = self.branch.get_ref().head  # deleted below only if still there
        try:
            self.merge_result = self.branch.merge_into(
                self.on.name, fast_forward=False, message=self.message,
                properties=self.run_properties())
        except LakeVersionError as error:  # conflict, failed checks...: keep the branch
            self.error = error
            self.merge_result = getattr(error, "result", None)  # a conflict's result
            raise
        if not self.keep_branch:
            try:
                self.branch.delete(expected_head=merged_head)
            except ReferenceConflict:  # written to after the merge: keep those writes
                return
            self.branch_deleted = True

    def __repr__(self) -> str:
        return f"Run({self.id!r}, branch={self.branch.name!r}, on={self.on.name!r})"
