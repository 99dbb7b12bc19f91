"""The SQL of merge requests, their approvals, and the approvals a branch requires
(`spark_lakeversion.model.reviews`)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from spark_lakeversion.model import Approval, MergeRequest, MrStatus
from spark_lakeversion.store.objects import from_us, to_us

reviews_metadata = sa.MetaData()
merge_requests_table = sa.Table(
    "lv_merge_requests", reviews_metadata,
    sa.Column("number", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("target", sa.String(128), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
    sa.Column("merged_commit", sa.String(40), nullable=True),
    sa.Column("merged_source", sa.String(40), nullable=True),  # the source head merged
    sa.Index("lv_merge_requests_by_status", "status", "number"),
)
approvals_table = sa.Table(
    "lv_mr_approvals", reviews_metadata,
    sa.Column("number", sa.BigInteger, primary_key=True),
    sa.Column("principal", sa.String(256), primary_key=True),
    sa.Column("source_head", sa.String(40), nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
)
branch_approvals_table = sa.Table(
    "lv_branch_approvals", reviews_metadata,
    sa.Column("branch", sa.String(128), primary_key=True),
    sa.Column("required", sa.Integer, nullable=False),
)


def create(conn: Connection) -> None:
    reviews_metadata.create_all(conn, checkfirst=True)


def required_approvals(conn: Connection) -> dict[str, int]:
    return {str(r.branch): int(r.required) for r in conn.execute(
        sa.select(branch_approvals_table))}


def set_required_approvals(conn: Connection, branch: str, required: int) -> None:
    """`required` approvals for merges into `branch` (0: none, the row goes)."""
    conn.execute(branch_approvals_table.delete().where(
        branch_approvals_table.c.branch == branch))
    if required > 0:
        conn.execute(branch_approvals_table.insert().values(branch=branch,
                                                            required=required))


def add(conn: Connection, source: str, target: str, title: str, description: str,
        author: str, now: datetime) -> int:
    result = conn.execute(merge_requests_table.insert().values(
        source=source, target=target, title=title, description=description, author=author,
        status=MrStatus.OPEN.value, created_us=to_us(now), updated_us=to_us(now),
        merged_commit=None))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _approvals(conn: Connection, numbers: list[int]) -> dict[int, list[Approval]]:
    found: dict[int, list[Approval]] = {n: [] for n in numbers}
    if numbers:
        for r in conn.execute(sa.select(approvals_table)
                              .where(approvals_table.c.number.in_(numbers))
                              .order_by(approvals_table.c.ts_us)):
            found[int(r.number)].append(Approval(r.principal, r.source_head, from_us(r.ts_us)))
    return found


def _request(row: sa.Row, approvals: list[Approval]) -> MergeRequest:
    return MergeRequest(int(row.number), row.source, row.target, row.title, row.description,
                        row.author, MrStatus(row.status), from_us(row.created_us),
                        from_us(row.updated_us), row.merged_commit, tuple(approvals),
                        row.merged_source)


def get(conn: Connection, number: int) -> MergeRequest | None:
    row = conn.execute(sa.select(merge_requests_table).where(
        merge_requests_table.c.number == number)).first()
    return None if row is None else _request(row, _approvals(conn, [number])[number])


def page(conn: Connection, status: MrStatus | None, before: int | None,
         limit: int) -> list[MergeRequest]:
    """Newest first: numbers below `before` (None: from the newest)."""
    query = sa.select(merge_requests_table).order_by(
        merge_requests_table.c.number.desc()).limit(limit)
    if status is not None:
        query = query.where(merge_requests_table.c.status == status.value)
    if before is not None:
        query = query.where(merge_requests_table.c.number < before)
    rows = list(conn.execute(query))
    approvals = _approvals(conn, [int(r.number) for r in rows])
    return [_request(r, approvals[int(r.number)]) for r in rows]


def approve(conn: Connection, number: int, principal: str, source_head: str,
            now: datetime) -> None:
    """Record (or renew) `principal`'s approval of `source_head`."""
    conn.execute(approvals_table.delete().where(approvals_table.c.number == number,
                                                approvals_table.c.principal == principal))
    conn.execute(approvals_table.insert().values(number=number, principal=principal,
                                                 source_head=source_head, ts_us=to_us(now)))


def set_status(conn: Connection, number: int, expected: MrStatus, status: MrStatus,
               now: datetime, merged_commit: str | None = None,
               merged_source: str | None = None) -> bool:
    """Compare-and-set of the status; whether it was still `expected`."""
    return bool(conn.execute(merge_requests_table.update().where(
        merge_requests_table.c.number == number,
        merge_requests_table.c.status == expected.value).values(
        status=status.value, updated_us=to_us(now), merged_commit=merged_commit,
        merged_source=merged_source)).rowcount)
