"""Which Iceberg delete files apply to which data file (the scan-planning rules the row
reader follows), and equality deletes applied with null equal to null."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestEntry,
    ManifestEntryStatus,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.transforms import IdentityTransform
from pyiceberg.typedef import Record

from spark_lakeversion.formats.iceberg.rows import Targets, _drop_equal, applies

SPECS: dict[int, Any] = {
    0: PartitionSpec(spec_id=0),
    1: PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(),
                                    name="p"), spec_id=1)}


def entry(content: DataFileContent, path: str, seq: int, spec: int = 1,
          partition: tuple[Any, ...] = ("a",)) -> ManifestEntry:
    data = DataFile.from_args(content=content, file_path=path, file_format=FileFormat.PARQUET,
                              partition=Record(*partition), record_count=1,
                              file_size_in_bytes=1, equality_ids=[1]
                              if content == DataFileContent.EQUALITY_DELETES else None)
    data.spec_id = spec
    return ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, sequence_number=seq,
                                   data_file=data)


def test_equality_deletes_apply_to_older_files_of_their_partition() -> None:
    targets = Targets(PyArrowFileIO())
    data = entry(DataFileContent.DATA, "d1", 3)
    same = entry(DataFileContent.EQUALITY_DELETES, "e1", 4)
    assert applies(same, data, SPECS, targets)
    assert not applies(entry(DataFileContent.EQUALITY_DELETES, "e2", 3), data, SPECS, targets)
    assert not applies(entry(DataFileContent.EQUALITY_DELETES, "e3", 5, partition=("b",)),
                       data, SPECS, targets)
    # an unpartitioned equality delete applies everywhere
    assert applies(entry(DataFileContent.EQUALITY_DELETES, "e4", 5, spec=0, partition=()),
                   data, SPECS, targets)


def test_position_deletes_apply_to_files_up_to_their_sequence_number() -> None:
    targets = Targets(PyArrowFileIO())
    data = entry(DataFileContent.DATA, "d1", 3)
    assert applies(entry(DataFileContent.POSITION_DELETES, "p1", 3), data, SPECS, targets)
    assert not applies(entry(DataFileContent.POSITION_DELETES, "p2", 2), data, SPECS, targets)
    assert not applies(entry(DataFileContent.POSITION_DELETES, "p3", 4, partition=("b",)),
                       data, SPECS, targets)


def test_equality_delete_values_match_null_to_null() -> None:
    batch = pa.record_batch({"id": [1, None, 3], "v": ["a", "b", "c"]})
    kept = _drop_equal(batch, ["id"], {(None,), (3,)})
    assert kept.to_pylist() == [{"id": 1, "v": "a"}]
