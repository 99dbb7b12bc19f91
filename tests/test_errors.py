"""The one error table: each error class carries its HTTP status, CLI exit code and Iceberg
error; every surface reads the row, and Iceberg clients (Spark) get the type back by code."""

from __future__ import annotations

import click
import pytest

from spark_lakeversion.cli.output import exit_code_for
from spark_lakeversion.errors import (
    ERRORS_BY_CODE,
    ExitCode,
    GcEpochChanged,
    LakeVersionError,
    marked_message,
)
from spark_lakeversion.server.errors import api_error_body, iceberg_from_lakeversion
from spark_lakeversion.spark.jvm import translate

#: class -> (HTTP status, exit code, Iceberg type, Iceberg status): the table README and
#: DEVELOPERS.md document, pinned so a change to one row is a deliberate one
TABLE: dict[str, tuple[int, int, str, int]] = {
    "LakeVersionError": (500, 4, "ServiceFailureException", 500),
    "InvalidInput": (400, 1, "BadRequestException", 400),
    "InvalidName": (400, 1, "BadRequestException", 400),
    "InvalidRefExpression": (400, 1, "BadRequestException", 400),
    "InvalidKey": (400, 1, "BadRequestException", 400),
    "TooLarge": (413, 1, "BadRequestException", 413),
    "LocationNotAllowed": (400, 1, "BadRequestException", 400),
    "UnsupportedTableFeature": (400, 1, "BadRequestException", 400),
    "Unauthorized": (401, 1, "NotAuthorizedException", 401),
    "NotFound": (404, 2, "NoSuchTableException", 404),
    "RefNotFound": (404, 2, "NoSuchTableException", 404),
    "CommitNotFound": (404, 2, "NoSuchTableException", 404),
    "KeyNotFound": (404, 2, "NoSuchTableException", 404),
    "AlreadyExists": (409, 1, "AlreadyExistsException", 409),
    "ReadOnlyRef": (403, 1, "ForbiddenException", 403),
    "Forbidden": (403, 6, "ForbiddenException", 403),
    "ProtectedBranch": (403, 1, "ForbiddenException", 403),
    "ChecksFailed": (412, 5, "CommitFailedException", 409),
    "UnsafeOperation": (403, 1, "ForbiddenException", 403),
    "HistoryCollected": (409, 3, "BadRequestException", 400),
    "ConflictError": (409, 3, "CommitFailedException", 409),
    "ReferenceConflict": (409, 3, "CommitFailedException", 409),
    "GcEpochChanged": (409, 3, "CommitFailedException", 409),
    "UnmergedBranch": (409, 3, "CommitFailedException", 409),
    "CommitOutcomeUnknown": (503, 4, "CommitStateUnknownException", 503),
    "ServerError": (502, 4, "ServiceUnavailableException", 502),
}

CLASSES = list(ERRORS_BY_CODE.values())


def test_every_error_class_has_exactly_its_documented_row() -> None:
    assert {cls.__name__ for cls in ERRORS_BY_CODE.values()} == set(TABLE)
    for cls in CLASSES:
        name = cls.__name__
        assert (cls.http_status, int(cls.exit_code), cls.iceberg_type,
                cls.iceberg_status) == TABLE[name], cls.__name__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_surface_reads_the_row(cls: type[LakeVersionError]) -> None:
    error = cls("why")
    http, exit_code, iceberg_type, iceberg_status = TABLE[
        "ConflictError" if cls is GcEpochChanged else cls.__name__]
    assert exit_code_for(error) == exit_code
    assert api_error_body(error)["error"]["code"] == cls.code
    iceberg = iceberg_from_lakeversion(error, table_op=True)
    assert (iceberg.status, iceberg.type) == (iceberg_status, iceberg_type)
    assert iceberg.message == f"[LAKEVERSION:{cls.code}] why" == marked_message(error)


def test_a_namespace_route_answers_no_such_namespace() -> None:
    error = ERRORS_BY_CODE["KEY_NOT_FOUND"]("Namespace does not exist: db")
    assert iceberg_from_lakeversion(error).type == "NoSuchNamespaceException"
    assert iceberg_from_lakeversion(error, table_op=True).type == "NoSuchTableException"


def test_errors_that_are_not_ours_exit_as_usage_or_failure() -> None:
    assert exit_code_for(click.UsageError("no such option")) == ExitCode.INVALID
    assert exit_code_for(RuntimeError("boom")) == ExitCode.FAILED


@pytest.mark.parametrize("cls", list(ERRORS_BY_CODE.values()), ids=lambda c: c.__name__)
def test_an_iceberg_client_error_is_typed_by_its_code_never_its_wording(
        cls: type[LakeVersionError]) -> None:
    """What Spark's Iceberg client raises holds only the message (behind Iceberg's own
    prefix): the code marker alone names our type, whatever the wording says."""
    misleading = "access denied: branch 'main' is protected: outside the allowed roots"
    text = "Forbidden: " + iceberg_from_lakeversion(cls(misleading)).message
    rebuilt = translate(Exception(text))
    assert type(rebuilt) is cls
    assert rebuilt is not None and rebuilt.message == misleading
