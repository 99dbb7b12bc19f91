"""The SQL of merge gates' settings and records (`spark_lakeversion.model.gates`)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from spark_lakeversion.errors import AlreadyExists
from spark_lakeversion.model import CheckKind, CheckReport, CheckRun, CheckSpec
from spark_lakeversion.store.objects import from_us, to_us

gates_metadata = sa.MetaData()
protected_table = sa.Table(
    "lv_protected_branches", gates_metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
)
checks_table = sa.Table(
    "lv_checks", gates_metadata,
    sa.Column("branch", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("tables", sa.Text, nullable=False),
    sa.Column("timeout_s", sa.Float, nullable=False),
)
check_runs_table = sa.Table(
    "lv_check_runs", gates_metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("attempt", sa.String(40), nullable=False),
    sa.Column("branch", sa.String(128), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("preview", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("report", sa.Text, nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Index("lv_check_runs_by_branch", "branch", "seq"),
    sa.Index("lv_check_runs_by_time", "ts_us"),
)


def create(conn: Connection) -> None:
    gates_metadata.create_all(conn, checkfirst=True)


# built once: every commit and merge reads them (building cost more than running)
_PROTECTED = sa.select(protected_table.c.name)
_ALL_CHECKS = sa.select(checks_table).order_by(checks_table.c.branch, checks_table.c.name)
_BRANCH_CHECKS = _ALL_CHECKS.where(checks_table.c.branch == sa.bindparam("branch"))


def protected(conn: Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute(_PROTECTED)}


def set_protected(conn: Connection, branch: str, on: bool) -> bool:
    """Whether anything changed."""
    exists = conn.execute(sa.select(protected_table.c.name)
                          .where(protected_table.c.name == branch)).first() is not None
    if on and not exists:
        conn.execute(protected_table.insert().values(name=branch,
                                                     ts_us=int(time.time() * 1e6)))
    elif not on and exists:
        conn.execute(protected_table.delete().where(protected_table.c.name == branch))
    return on != exists


def checks(conn: Connection, branch: str | None) -> list[CheckSpec]:
    rows = conn.execute(_ALL_CHECKS) if branch is None \
        else conn.execute(_BRANCH_CHECKS, {"branch": branch})
    return [CheckSpec(r.branch, r.name, CheckKind(r.kind), r.spec,
                      tuple(json.loads(r.tables)), float(r.timeout_s))
            for r in rows]


def _exists_error(spec: CheckSpec) -> AlreadyExists:
    return AlreadyExists(f"branch {spec.branch!r} already has a check named {spec.name!r}: "
                         "remove it first")


def add_check(conn: Connection, spec: CheckSpec) -> None:
    """Insert `spec`; `AlreadyExists` when its name is taken (the caller's transaction
    fails on a concurrent insert of the same name: `IntegrityError`, see `add_check_error`)."""
    if conn.execute(sa.select(checks_table.c.name).where(
            checks_table.c.branch == spec.branch,
            checks_table.c.name == spec.name)).first() is not None:
        raise _exists_error(spec)
    conn.execute(checks_table.insert().values(
        branch=spec.branch, name=spec.name, kind=spec.kind.value, spec=spec.spec,
        tables=json.dumps(list(spec.tables)), timeout_s=spec.timeout_s))


def add_check_error(spec: CheckSpec, exc: IntegrityError) -> AlreadyExists:
    return _exists_error(spec)


def remove_check(conn: Connection, branch: str, name: str) -> bool:
    return bool(conn.execute(checks_table.delete().where(
        checks_table.c.branch == branch, checks_table.c.name == name)).rowcount)


def record_runs(conn: Connection, runs: Sequence[CheckRun]) -> None:
    if runs:
        conn.execute(check_runs_table.insert(), [
            {"attempt": r.attempt, "branch": r.branch, "source": r.source,
             "preview": r.preview, "kind": r.kind, "name": r.report.name,
             "status": r.report.status.value, "report": json.dumps(r.report.to_dict()),
             "ts_us": to_us(r.timestamp)} for r in runs])


def runs(conn: Connection, branch: str | None, limit: int) -> list[CheckRun]:
    query = sa.select(check_runs_table).order_by(check_runs_table.c.seq.desc()).limit(limit)
    if branch is not None:
        query = query.where(check_runs_table.c.branch == branch)
    return [CheckRun(r.attempt, r.branch, r.source, r.preview,
                     CheckReport.from_dict(json.loads(r.report)), from_us(r.ts_us), r.kind)
            for r in conn.execute(query)]


def previews_since(conn: Connection, since_us: int) -> list[str]:
    return sorted({str(r[0]) for r in conn.execute(
        sa.select(check_runs_table.c.preview).where(check_runs_table.c.ts_us >= since_us))})
