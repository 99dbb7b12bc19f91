"""gc's durations: the grace period and the history window, their defaults and limits,
parsed once for the CLI, the server and Python callers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from spark_lakeversion.errors import InvalidInput

#: grace period: unreached files younger than this are kept (in-flight writes); a Spark job
#: can run for hours before it commits, so the default is a full day
DEFAULT_OLDER_THAN = timedelta(days=1)
#: the smallest grace period without `force`: below it, a writer's files can be collected
#: between its write and its commit (the commit is then refused, but its work is lost)
MIN_OLDER_THAN = timedelta(hours=1)
#: history retention: commits newer than this stay readable (`main~3`, `main#<time>`)
DEFAULT_KEEP_COMMITS_SINCE = timedelta(days=7)
#: how often the deletion phase re-reads moving refs before it gives up
MAX_RECHECKS = 10

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr|d|day|days|w|wk)?\s*$",
                       re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "wk": 604800}

_MAX_DURATION_S = 100 * 365 * 86400


def parse_duration(value: str | timedelta | float) -> timedelta:
    """``30s``, ``15m``, ``3h``, ``1d``, ``2w`` (or plain seconds) as a timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    else:
        raise InvalidInput(f"invalid duration {value!r}: use e.g. 30s, 15m, 3h, 1d or 2w")
    if not seconds >= 0:  # also refuses NaN
        raise InvalidInput(f"a duration cannot be negative: {value!r}")
    if seconds > _MAX_DURATION_S:
        raise InvalidInput(f"duration {value!r} is too long: at most 100 years")
    return timedelta(seconds=seconds)


def check_grace(grace: timedelta, force: bool) -> None:
    """`InvalidInput` for a grace period below `MIN_OLDER_THAN` unless forced."""
    if grace < MIN_OLDER_THAN and not force:
        raise InvalidInput(
            f"a grace period (--older-than) of {grace.total_seconds():g}s is below the minimum "
            f"of {int(MIN_OLDER_THAN.total_seconds() // 3600)}h: files of writes still in "
            "flight could be deleted; use --force (force=True) to go lower on a local store")


def parse_since(value: str) -> datetime:
    """A point in time for `--since` (the audit trail): an ISO-8601 time (UTC without a
    zone) or a duration back from now (`1d`, `3h`)."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            return datetime.now(timezone.utc) - parse_duration(value)
        except InvalidInput:
            raise InvalidInput("since must be an ISO-8601 time or a duration such as 1d, "
                               f"not {value[:64]!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
