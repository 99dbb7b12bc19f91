"""The one place Python touches py4j: JVM errors in, typed `spark_lakeversion.errors` out.

The Java shim raises `io.lakeversion.spark.LakeVersionException`, whose message starts with
`[LAKEVERSION:<CODE>]` and which keeps the server's JSON error body; the server's `/iceberg`
error messages start with the same marker (`errors.marked_message`), so an Iceberg client
exception is mapped by its code too, never by its wording. PySpark turns JVM
errors into its own exceptions (or leaves a raw `Py4JJavaError`); `translate` walks the
Java cause chain and rebuilds our error, so callers catch `RefNotFound`, not strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from spark_lakeversion.errors import (
    CODE_MARKER,
    CommitOutcomeUnknown,
    InvalidInput,
    LakeVersionError,
    ReadOnlyRef,
)
from spark_lakeversion.versioning.wire import error_from_json

SHIM_EXCEPTION = "io.lakeversion.spark.LakeVersionException"
#: Iceberg REST client exceptions by meaning, for an answer without our code marker (every
#: error of ours on `/iceberg` carries one: `errors.marked_message`)
ICEBERG_EXCEPTIONS: dict[str, type[LakeVersionError]] = {
    "org.apache.iceberg.exceptions.ForbiddenException": ReadOnlyRef,
    "org.apache.iceberg.exceptions.CommitStateUnknownException": CommitOutcomeUnknown,
    "org.apache.iceberg.exceptions.BadRequestException": InvalidInput,
}
#: what Iceberg's REST client puts before the server's message
_ICEBERG_PREFIXES = ("Malformed request: ", "Forbidden: ")
_MAX_CAUSES = 20


def _java_throwable(exc: BaseException) -> Any | None:
    """The JVM throwable behind a Py4JJavaError or a PySpark CapturedException, if any."""
    from py4j.protocol import Py4JJavaError

    if isinstance(exc, Py4JJavaError):
        return exc.java_exception
    return getattr(exc, "_origin", None)


def _from_text(text: str) -> LakeVersionError | None:
    """The error named by the code marker in `text` (never by the wording around it)."""
    match = CODE_MARKER.search(text)
    if not match:
        return None
    # the whole (possibly multi-line) message, minus a Java stack trace glued after it
    return error_from_json(match.group(1), match.group(2).split("\n\tat ")[0].strip(), None)


def translate(exc: BaseException) -> LakeVersionError | None:
    """Our typed error for a JVM-side failure, or None when it is not one of ours."""
    if isinstance(exc, LakeVersionError):
        return exc
    throwable = _java_throwable(exc)
    seen = 0
    while throwable is not None and seen < _MAX_CAUSES:
        seen += 1
        try:
            class_name = throwable.getClass().getName()
            if class_name == SHIM_EXCEPTION:
                raw = str(throwable.getMessage() or "")
                match = CODE_MARKER.search(raw)
                message = match.group(2) if match else raw
                payload_text = throwable.payload()
                payload = json.loads(payload_text) if payload_text else None
                return error_from_json(str(throwable.code()), message, payload)
            if class_name in ICEBERG_EXCEPTIONS:
                message = str(throwable.getMessage())
                for prefix in _ICEBERG_PREFIXES:
                    message = message.removeprefix(prefix)
                return _from_text(message) or ICEBERG_EXCEPTIONS[class_name](message)
            found = _from_text(str(throwable.getMessage() or ""))
            if found is not None:
                return found
            throwable = throwable.getCause()
        except Exception:  # the gateway is gone: fall back to the text we have
            break
    return _from_text(str(exc))


def _patched(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_return_value(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except Exception as exc:
            ours = translate(exc)
            if ours is None:
                raise
            raise ours from exc

    get_return_value._lakeversion = True  # type: ignore[attr-defined]
    return get_return_value


def install_error_translation() -> None:
    """Make every py4j call raise our typed errors for shim failures (idempotent).

    PySpark re-patches `py4j.java_gateway.get_return_value` when a SparkContext starts,
    so call this after the session exists; other JVM errors pass through untouched.
    """
    import py4j.java_gateway

    current = py4j.java_gateway.get_return_value
    if getattr(current, "_lakeversion", False):
        return
    py4j.java_gateway.get_return_value = _patched(current)


@contextmanager
def lakeversion_errors() -> Iterator[None]:
    """`with lakeversion_errors(): spark.sql(...)` for code that did not install the hook."""
    try:
        yield
    except LakeVersionError:
        raise
    except Exception as exc:
        ours = translate(exc)
        if ours is None:
            raise
        raise ours from exc


def _jvm(spark: Any) -> Any:
    return spark.sparkContext._jvm


def rewrite_sql(spark: Any, sql: str) -> str:
    """The SQL text our parser hands on to Spark (no catalog prefixing); for tests/debug."""
    return str(_jvm(spark).io.lakeversion.spark.RefSyntax.rewrite(sql, None))


def branch_sql_to_call(spark: Any, sql: str, catalog: str = "lv") -> str | None:
    """The CALL a branch statement becomes, or None when the text is not one of ours."""
    with lakeversion_errors():
        call = _jvm(spark).io.lakeversion.spark.BranchSql.toCall(sql, catalog)
    return None if call is None else str(call)


def current_ref(spark: Any, catalog: str = "lv") -> str:
    """The ref unqualified names of `catalog` use in this session (after USE BRANCH)."""
    with lakeversion_errors():
        plugin = spark._jsparkSession.sessionState().catalogManager().catalog(catalog)
        return str(plugin.currentRef())

