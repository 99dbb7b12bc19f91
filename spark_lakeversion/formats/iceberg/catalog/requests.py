"""Request bodies of the Iceberg REST catalog, parsed once into typed values.

pyiceberg's own request models are reused where they exist (`CreateTableRequest`,
`RegisterTableRequest`, `CommitTableRequest`, `TableIdentifier`), loosened only where the
spec lets clients leave a field out: the Java client omits `location`, `partition-spec`,
`write-order`, `overwrite`, and the table path names the table of a commit. pyiceberg
has no model for namespace bodies, renames or multi-table transactions: those are ours.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pyiceberg.catalog import rest
from pyiceberg.exceptions import ValidationError as PyIcebergValidationError
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import CommitTableRequest, TableIdentifier
from pyiceberg.table.sorting import SortOrder
from pyiceberg.view.metadata import ViewVersion

from spark_lakeversion.formats.iceberg.catalog.errors import bad_request

#: what pyiceberg's models and `update_table_metadata` raise on bad input, besides pydantic's
#: ValidationError (a ValueError): from constructors past pydantic, or from lookups such as
#: `next(...)` over specs/schemas of a table being created without them; ArithmeticError for
#: out-of-range values such as a date default of 2**31 days (OverflowError);
#: NotImplementedError for what pyiceberg 0.12 cannot do yet: a request the server cannot
#: serve is refused with that reason (400), never answered "outcome unknown"
PYICEBERG_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError,
                          StopIteration, ArithmeticError, NotImplementedError,
                          PyIcebergValidationError)


class CreateTableRequest(rest.CreateTableRequest):
    """pyiceberg's model with the spec's optional fields optional."""

    location: str | None = None
    partition_spec: PartitionSpec | None = Field(default=None, alias="partition-spec")
    write_order: SortOrder | None = Field(default=None, alias="write-order")

    @field_validator("properties", mode="before")
    @classmethod
    def transform_properties_dict_value_to_str(cls, properties: Any) -> Any:
        """Overrides pyiceberg's coercion: property values must already be strings."""
        return properties


class RegisterTableRequest(rest.RegisterTableRequest):
    """pyiceberg's model; `overwrite` defaults to false, as in the spec."""

    overwrite: bool = False


class CommitTableBody(CommitTableRequest):
    """pyiceberg's CommitTableRequest; the identifier is optional (the path names the table)."""

    identifier: TableIdentifier | None = None  # type: ignore[assignment]


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class CreateNamespaceBody(_Body):
    namespace: list[str]
    properties: dict[str, str] = Field(default_factory=dict)


class UpdateNamespaceBody(_Body):
    removals: list[str] = Field(default_factory=list)
    updates: dict[str, str] = Field(default_factory=dict)


class RenameBody(_Body):
    source: TableIdentifier
    destination: TableIdentifier


class TransactionBody(_Body):
    """The spec's CommitTransactionRequest: each change is a full CommitTableRequest."""

    table_changes: list[CommitTableRequest] = Field(alias="table-changes")


# ---- views: pyiceberg has request models for create and register, none for commits ----------
class CreateViewBody(_Body):
    """The spec's CreateViewRequest."""

    name: str
    location: str | None = None
    view_schema: Schema = Field(alias="schema")
    view_version: ViewVersion = Field(alias="view-version")
    properties: dict[str, str] = Field(default_factory=dict)


class RegisterViewBody(_Body):
    """The spec's RegisterViewRequest."""

    name: str
    metadata_location: str = Field(alias="metadata-location")


class AssertViewUUID(_Body):
    type: Literal["assert-view-uuid"]
    uuid: str


class _ViewUpdate(_Body):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class AssignViewUUID(_ViewUpdate):
    action: Literal["assign-uuid"]
    uuid: str


class UpgradeViewFormatVersion(_ViewUpdate):
    action: Literal["upgrade-format-version"]
    format_version: int = Field(alias="format-version")


class AddViewSchema(_ViewUpdate):
    action: Literal["add-schema"]
    view_schema: Schema = Field(alias="schema")
    last_column_id: int | None = Field(default=None, alias="last-column-id")


class SetViewLocation(_ViewUpdate):
    action: Literal["set-location"]
    location: str


class SetViewProperties(_ViewUpdate):
    action: Literal["set-properties"]
    updates: dict[str, str]


class RemoveViewProperties(_ViewUpdate):
    action: Literal["remove-properties"]
    removals: list[str]


class AddViewVersion(_ViewUpdate):
    action: Literal["add-view-version"]
    view_version: ViewVersion = Field(alias="view-version")


class SetCurrentViewVersion(_ViewUpdate):
    action: Literal["set-current-view-version"]
    view_version_id: int = Field(alias="view-version-id")


ViewUpdate = Annotated[
    Union[AssignViewUUID, UpgradeViewFormatVersion, AddViewSchema, SetViewLocation,
          SetViewProperties, RemoveViewProperties, AddViewVersion, SetCurrentViewVersion],
    Field(discriminator="action")]


class CommitViewBody(_Body):
    """The spec's CommitViewRequest; the identifier is optional (the path names the view)."""

    identifier: TableIdentifier | None = None
    requirements: list[AssertViewUUID] = Field(default_factory=list)
    updates: list[ViewUpdate] = Field(default_factory=list)


def parse(model: type[Any], body: Any) -> Any:
    """`body` as `model`, or a 400 naming the first problem."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        why = errors[0]["msg"] if errors else "malformed"
        raise bad_request(f"invalid request body at {where or 'root'}: {why}") from None
    except PYICEBERG_INPUT_ERRORS as exc:
        raise bad_request(f"invalid request body: {type(exc).__name__}: {exc}") from None
