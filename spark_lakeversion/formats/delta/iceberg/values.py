"""Dates and timestamps between Delta's text (partition values, stats) and Iceberg's
numbers (days and microseconds since the epoch, UTC): the one home of those conversions."""

from __future__ import annotations

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_DAY = dt.date(1970, 1, 1)


def micros(text: str) -> int:
    """`2024-01-02T03:04:05.678Z`, `2024-01-02 03:04:05.678901` (naive: UTC) as micros."""
    moment = dt.datetime.fromisoformat(text.strip().replace(" ", "T").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def timestamp_text(value: int, *, stats: bool) -> str:
    """Micros as Delta writes them: stats in ISO with milliseconds and `Z`, partition
    values as `YYYY-MM-DD HH:MM:SS.ffffff`."""
    moment = EPOCH + dt.timedelta(microseconds=value)
    if not stats:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def days(text: str) -> int:
    return (dt.date.fromisoformat(text.strip()[:10]) - _EPOCH_DAY).days


def date_text(value: int) -> str:
    return (_EPOCH_DAY + dt.timedelta(days=value)).isoformat()
