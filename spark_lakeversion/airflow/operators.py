"""Operators for a pipeline on a branch: create it, run Spark on it, merge it (through the
target's gates), roll back, tag, delete.

Every field named in ``template_fields`` is rendered by Jinja; every operator returns its
result to XCom (commit ids, or the merge result as a dict); the commits they make carry
the task's DAG id, run id, task id and logical date (`metadata.airflow_properties`).
A conflict or failed checks fail the task without retries (`AirflowFailException`):
retrying cannot change the verdict; the reports are in the task log. An unreachable
server or a ref that moved meanwhile fail it as retryable (`AirflowException`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from spark_lakeversion.airflow import DEFAULT_CONN_ID
from spark_lakeversion.airflow.hooks import LakeVersionHook
from spark_lakeversion.airflow.metadata import airflow_properties
from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import (
    AlreadyExists,
    ChecksFailed,
    ConflictError,
    LakeVersionError,
    ReferenceConflict,
    RefNotFound,
    ServerError,
)

__all__ = ["CreateBranchOperator", "DeleteBranchOperator", "LakeVersionOperator",
           "LakeVersionSparkSubmitOperator", "MergeOperator", "RollbackOperator",
           "TagOperator", "describe_failure"]


#: failures a retry can cure (the server was away, a ref moved under us); everything else
#: (conflicts, failed checks, bad names, an unknown outcome) fails without retrying
RETRYABLE = (ServerError, ReferenceConflict)


class LakeVersionOperator(BaseOperator):
    """Base: a hook on `lakeversion_conn_id`, closed after `execute`."""

    ui_color = "#d6eaf8"

    def __init__(self, *, lakeversion_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lakeversion_conn_id = lakeversion_conn_id

    def execute(self, context: Any) -> Any:
        hook = LakeVersionHook(self.lakeversion_conn_id)
        try:
            catalog = hook.get_conn()
            catalog.properties = airflow_properties(context)
            return self.run(catalog, context)
        except LakeVersionError as error:
            for line in describe_failure(error):
                self.log.error("%s", line)
            message = f"{type(error).__name__}: {error.message}"
            if isinstance(error, RETRYABLE):
                raise AirflowException(message) from None
            raise AirflowFailException(message) from None
        finally:
            hook.close()

    def run(self, catalog: Catalog, context: Any) -> Any:
        raise NotImplementedError


def describe_failure(error: LakeVersionError) -> list[str]:
    """Log lines for a refused operation: the error, each conflict, each check report."""
    lines = [f"{type(error).__name__} ({error.code}): {error.message}"]
    if isinstance(error, ConflictError):
        for conflict in error.conflicts:
            lines.append(f"  conflict on {conflict.key}: {conflict.message}")
    if isinstance(error, ChecksFailed):
        if error.preview:
            lines.append(f"  the checks read the merge preview {error.preview} "
                         "(readable for debugging)")
        for report in error.reports:
            lines.append(f"  check {json.dumps(report, default=str)}")
    return lines


class CreateBranchOperator(LakeVersionOperator):
    """Create `branch` at `source`; XCom: the branch's head commit id (the source's head
    when the run started: what a failure callback can roll back to)."""

    template_fields: Sequence[str] = ("branch", "source")

    def __init__(self, *, branch: str, source: str = "main", exist_ok: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.source = source
        self.exist_ok = exist_ok

    def run(self, catalog: Catalog, context: Any) -> str:
        head = catalog.branch(self.branch).create(from_=self.source,
                                                  exist_ok=self.exist_ok).head.id
        self.log.info("branch %s at %s (from %s)", self.branch, head, self.source)
        return head


class MergeOperator(LakeVersionOperator):
    """Merge `source` into `target` through the target's gates; XCom: the merge result as a
    dict (key ``commit_id``: the target's new head)."""

    template_fields: Sequence[str] = ("source", "target", "message")

    def __init__(self, *, source: str, target: str = "main", message: str | None = None,
                 strategy: str = "normal", fast_forward: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.target = target
        self.message = message
        self.strategy = strategy
        self.fast_forward = fast_forward

    def run(self, catalog: Catalog, context: Any) -> dict[str, Any]:
        result = catalog.ref(self.source).merge_into(
            self.target, strategy=self.strategy, fast_forward=self.fast_forward,
            message=self.message or f"merge {self.source} into {self.target}")
        self.log.info("merged %s into %s: %s -> %s", self.source, self.target,
                      result.target_head_before, result.new_head)
        context["ti"].xcom_push(key="commit_id", value=result.new_head)
        return result.to_dict()


class RollbackOperator(LakeVersionOperator):
    """Set tables on `branch` back to their state at `to` (default: every table that
    differs), one commit per table; XCom: the new commit ids. Rollback commits name the
    DAG run and task in their message."""

    template_fields: Sequence[str] = ("branch", "to", "tables")

    def __init__(self, *, to: str, branch: str = "main", tables: Sequence[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.to = to
        self.tables = tables

    def run(self, catalog: Catalog, context: Any) -> list[str]:
        return rollback_tables(catalog, self.branch, self.to, self.tables,
                               airflow_properties(context), self.log)


def rollback_tables(catalog: Catalog, branch: str, to: str, tables: Sequence[str] | None,
                    properties: dict[str, str], log: Any) -> list[str]:
    """Roll back `tables` (default: all that differ from `to`) on `branch`; commit ids."""
    handle = catalog.branch(branch)
    keys = list(tables) if tables is not None else \
        [str(d.key) for d in handle.diff(to) if changes_a_table(d)]
    by = " ".join(f"{k.split('.', 1)[1]}={v}" for k, v in sorted(properties.items()))
    commits = []
    for key in keys:
        commit = handle.rollback_table(key, to=to, properties=properties,
                                       message=f"rollback {key} to {to} (airflow {by})")
        log.info("rolled back %s on %s to %s: commit %s", key, branch, to, commit.id)
        commits.append(commit.id)
    return commits


def changes_a_table(diff: Any) -> bool:
    """A diff entry about a table (not a namespace or view)."""
    content = diff.to_content or diff.from_content
    return content is not None and content.is_table


class DeleteBranchOperator(LakeVersionOperator):
    """Delete `branch`; XCom: its head before deletion (None if absent and `if_exists`).
    A branch holding commits no other ref holds fails the task (`UnmergedBranch`, git's
    ``-d``) unless `force` (git's ``-D``): a run's unpublished work is not dropped silently."""

    template_fields: Sequence[str] = ("branch",)

    def __init__(self, *, branch: str, if_exists: bool = False, force: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.if_exists = if_exists
        self.force = force

    def run(self, catalog: Catalog, context: Any) -> str | None:
        handle = catalog.branch(self.branch)
        try:
            head = handle.get_ref().head
        except RefNotFound:
            if self.if_exists:
                return None
            raise
        handle.delete(expected_head=head, force=self.force)
        self.log.info("deleted branch %s (was at %s)", self.branch, head)
        return head


class TagOperator(LakeVersionOperator):
    """Tag what `ref` resolves to; XCom: the tagged commit id."""

    template_fields: Sequence[str] = ("tag", "ref")

    def __init__(self, *, tag: str, ref: str = "main", exist_ok: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tag = tag
        self.ref = ref
        self.exist_ok = exist_ok

    def run(self, catalog: Catalog, context: Any) -> str:
        commit = catalog.ref(self.ref).resolve().commit_id
        try:
            catalog.tag(self.tag).create(from_=commit)
        except AlreadyExists:
            existing = catalog.tag(self.tag).head.id if catalog.tag(self.tag).exists() else None
            if not self.exist_ok or existing != commit:
                raise
        return commit


#: how much of a failed job's stderr (Spark's own log) the task log keeps
STDERR_LINES = 200


class LakeVersionSparkSubmitOperator(LakeVersionOperator):
    """A real ``spark-submit`` of `application` on `branch` of the connection's server, as
    ``lakeversion spark-submit`` runs it; the job's commits carry the Airflow ids.
    Before Spark starts, the server, the token and the branch are checked (one typed
    error: an unreachable server is retryable, a missing branch is not); with
    `create_branch` a missing branch is created from `source`. Spark logs at
    `spark_log_level`. XCom: the branch's head after the job."""

    template_fields: Sequence[str] = ("application", "application_args", "branch", "conf",
                                      "name", "source")
    ui_color = "#fdebd0"

    def __init__(self, *, application: str, branch: str,
                 application_args: Sequence[str] = (), conf: dict[str, str] | None = None,
                 master: str | None = "local[*]", name: str | None = None,
                 spark_submit_args: Sequence[str] = (), catalog: str = "lv",
                 create_branch: bool = False, source: str = "main",
                 spark_log_level: str = "WARN", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.application = application
        self.application_args = list(application_args)
        self.branch = branch
        self.conf = dict(conf or {})
        self.master = master
        self.name = name
        self.spark_submit_args = list(spark_submit_args)
        self.catalog = catalog
        self.create_branch = create_branch
        self.source = source
        self.spark_log_level = spark_log_level

    def run(self, catalog: Catalog, context: Any) -> str:
        from spark_lakeversion.spark.submit import run as spark_submit

        hook = LakeVersionHook(self.lakeversion_conn_id)
        url, token = hook.connection_settings()
        args = [*self.spark_submit_args, self.application,
                *[str(a) for a in self.application_args]]
        done = spark_submit(args, branch=self.branch, server=url, token=token,
                            catalog=self.catalog, master=self.master,
                            name=self.name or self.task_id, conf=self.conf,
                            properties=airflow_properties(context), capture=True,
                            log_level=self.spark_log_level,
                            create_from=self.source if self.create_branch else None,
                            progress=lambda line: self.log.info("%s", line),
                            create_option="create_branch=True")
        for line in (done.stdout or "").splitlines():
            self.log.info("%s", line)
        if done.returncode != 0:
            for line in (done.stderr or "").splitlines()[-STDERR_LINES:]:
                self.log.error("%s", line)
            raise AirflowException(f"spark-submit exited with code {done.returncode}")
        return catalog.branch(self.branch).head.id
