"""The `deltalake.DeltaTable` our handles return: its pyarrow reader finds every file the
log names, and its `vacuum` is refused.

deltalake's pyarrow reader (`to_pyarrow_table`, `to_pyarrow_dataset`, `to_pandas`) opens
every add path under the table's own directory: it percent-encodes ``..`` and prefixes
absolute URIs with the table root, so it cannot read a branch log whose files lie outside
its directory, in any form (README has the measurement). Ours hands it a file system that
resolves each path as `log.absolute` does (the one resolver) and opens it with the
server's FileIO properties. Its DataFusion reader (`scan`, `QueryBuilder`) needs no help.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from spark_lakeversion.errors import UnsafeOperation
from spark_lakeversion.formats.delta import log, storage
from spark_lakeversion.formats.delta.lib import deltalake

VACUUM_REFUSED = ("vacuum is refused on a catalog Delta table: other branches, tags and "
                  "commits may still read the files it would delete; run `lakeversion gc`")


def log_filesystem(location: str, io: Mapping[str, str] | None) -> Any:
    """A read-only pyarrow file system over the add paths of the log at `location`."""
    import pyarrow.fs as pafs

    class LogFiles(pafs.FileSystemHandler):  # type: ignore[misc]
        def _open(self, path: str) -> tuple[Any, str]:
            return storage.filesystem(log.file_id(location, path), io)

        def get_type_name(self) -> str:
            return "lakeversion-delta-log"

        def normalize_path(self, path: str) -> str:
            return path

        def get_file_info(self, paths: list[str]) -> list[Any]:
            out = []
            for path in paths:
                fs, where = self._open(path)
                info = fs.get_file_info(where)
                out.append(pafs.FileInfo(path, info.type, size=info.size, mtime=info.mtime))
            return out

        def open_input_file(self, path: str) -> Any:
            fs, where = self._open(path)
            return fs.open_input_file(where)

        def open_input_stream(self, path: str) -> Any:
            fs, where = self._open(path)
            return fs.open_input_stream(where)

        def _read_only(self, *args: Any, **kwargs: Any) -> Any:
            raise UnsafeOperation("a catalog Delta table's files are read-only here")

        get_file_info_selector = create_dir = delete_dir = delete_dir_contents = \
            delete_root_dir_contents = delete_file = move = copy_file = \
            open_output_stream = open_append_stream = _read_only

    return pafs.PyFileSystem(LogFiles())


@cache
def catalog_table_class() -> type:
    """`deltalake.DeltaTable` reading through `log_filesystem`, with `vacuum` refused (only
    the project's gc deletes)."""
    base = deltalake().DeltaTable

    class CatalogDeltaTable(base):  # type: ignore[misc, valid-type]
        lakeversion_location = ""
        lakeversion_io: Mapping[str, str] | None = None

        def to_pyarrow_dataset(self, *args: Any, **kwargs: Any) -> Any:
            if len(args) < 2 and kwargs.get("filesystem") is None:
                kwargs["filesystem"] = log_filesystem(self.lakeversion_location,
                                                      self.lakeversion_io)
            return super().to_pyarrow_dataset(*args, **kwargs)

        def vacuum(self, *args: Any, **kwargs: Any) -> list[str]:
            raise UnsafeOperation(VACUUM_REFUSED)

    return CatalogDeltaTable


def catalog_table(location: str, version: int, io: Mapping[str, str] | None) -> Any:
    """The table at `location` and `version`, read as `catalog_table_class` reads."""
    table = log.open_table(location, version, io=io, cls=catalog_table_class())
    table.lakeversion_location = location
    table.lakeversion_io = io
    return table
