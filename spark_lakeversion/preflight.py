"""Pre-flight: the questions a Spark job's start-up would otherwise answer with a stack trace.

Starting Spark costs seconds to a minute; a job whose server is down, whose branch does not
exist or whose token is refused then dies with a JVM stack trace that speaks of
"warehouses". `preflight` asks the server first, with a short timeout, and answers with one
typed error naming the server or the branch. `lakeversion spark-submit`, `lakeversion run`
and the Airflow spark-submit operator call it before anything else.
"""

from __future__ import annotations

from spark_lakeversion.errors import InvalidInput, RefNotFound, ServerError
from spark_lakeversion.model import Ref, RefType

__all__ = ["PREFLIGHT_TIMEOUT_S", "preflight"]

#: how long each pre-flight request may take: a live server answers in milliseconds
PREFLIGHT_TIMEOUT_S = 1.5


def preflight(server_url: str, branch: str, *, token: str | None = None,
              create_from: str | None = None, store: str | None = None,
              create_option: str | None = "--create-branch") -> Ref:
    """The ref `branch` on the server at `server_url`, checked before Spark starts.

    The server must answer, accept `token` and know `branch`; with `create_from` a
    missing branch is created from that ref expression instead of refused. `store` is
    what the user calls the store, for the messages (an embedded server's URL means
    nothing to them; default: `server_url`); `create_option` is how the caller's surface
    creates a missing branch (None: it cannot). Errors:
    `ServerError` (unreachable), `InvalidInput` (token refused, bad name), `RefNotFound`.
    """
    from spark_lakeversion.versioning.http import RestVersionStore
    from spark_lakeversion.versioning.names import validate_ref_name

    validate_ref_name(branch)
    url = server_url.rstrip("/")
    where = store or url
    rest = RestVersionStore(url, token=token, timeout=PREFLIGHT_TIMEOUT_S)
    try:
        try:
            return rest.get_ref(branch)
        except RefNotFound:
            if create_from is None:
                create = f" or pass {create_option}" if create_option else ""
                raise RefNotFound(
                    f"branch {branch!r} does not exist in {where}: create it first "
                    f"(lakeversion --store {where} branch create {branch}){create}"
                ) from None
        return rest.create_ref(branch, RefType.BRANCH, create_from)
    except ServerError as error:
        raise ServerError(f"cannot reach the lakeversion server at {url}: "
                          f"{_first_line(error.message)}") from None
    except InvalidInput as error:
        if not error.message.startswith("unauthorized"):
            raise
        raise InvalidInput(f"the lakeversion server at {url} refused the token "
                           "(--token / LAKEVERSION_TOKEN)") from None
    finally:
        rest.close()


def _first_line(text: str) -> str:
    """The cause without the URL the client repeats (`cannot reach URL: cause`)."""
    cause = text.splitlines()[0] if text else ""
    head, sep, rest = cause.partition(": ")
    return rest if sep and head.startswith("cannot reach") else cause
