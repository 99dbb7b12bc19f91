"""The Delta content value: which log a ref reads, at which version, and who may write it."""

from __future__ import annotations

from dataclasses import dataclass

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.model import Content, Key


@dataclass(frozen=True)
class DeltaState:
    """A Delta content's fields, typed. `location` and `root` are canonical URIs."""

    table_id: str
    location: str  # the log directory this state reads
    version: int
    root: str  # the table's own directory; branch logs live under <root>/_branches/
    writer: str | None  # the branch that owns the log at `location` (None: registered)

    @classmethod
    def of(cls, content: Content, key: Key | str = "table") -> DeltaState:
        if content.type is not DELTA_TABLE:
            raise InvalidInput(f"{key} is not a Delta table")
        fields = content.fields
        location, version = fields.get("location"), fields.get("version")
        if not isinstance(location, str) or not location:
            raise InvalidInput(f"Delta table {key}: the content needs a location")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise InvalidInput(f"Delta table {key}: version must be an integer >= 0, "
                               f"not {version!r}")
        root = fields.get("root", location)
        writer = fields.get("writer")
        if not isinstance(root, str) or not root:
            raise InvalidInput(f"Delta table {key}: root must be a location")
        if writer is not None and not isinstance(writer, str):
            raise InvalidInput(f"Delta table {key}: writer must be a branch name")
        return cls(content.id, location.rstrip("/"), version, root.rstrip("/"), writer)

    def content(self) -> Content:
        fields: dict[str, object] = {"location": self.location, "version": self.version,
                                     "root": self.root}
        if self.writer is not None:
            fields["writer"] = self.writer
        return Content(DELTA_TABLE, self.table_id, fields)

    def at(self, version: int) -> DeltaState:
        return DeltaState(self.table_id, self.location, version, self.root, self.writer)
