"""Row-level three-way merge of Delta tables (issue 23, section 2): keyed (the table property
`lakeversion.identifierFields`) and keyless, copy-on-write edits on both sides of one file.
After every merge the rows are read with deltalake and DuckDB; a conflict leaves the target
as it was. (Delta deletion vectors, Delta's merge-on-read, are refused by the row reader.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ConflictError
from spark_lakeversion.limits import Limits
from spark_lakeversion.model import ConflictType
from spark_lakeversion.wiring import open_store
from tests.formats.delta.helpers import data_files, independent_rows, rows

SCHEMA = pa.schema([("id", pa.int64()), ("p", pa.string()), ("v", pa.int64())])
BASE = [(i, "a", i * 10) for i in range(1, 11)]


def table(catalog: Catalog, keyed: bool) -> Catalog:
    main = catalog.branch("main").delta("db.t")
    main.create(SCHEMA, configuration={"lakeversion.identifierFields": "id"} if keyed
                else {})
    main.append(pa.Table.from_pylist([dict(zip(("id", "p", "v"), r, strict=True))
                                      for r in BASE], schema=SCHEMA))
    catalog.branch("dev").create()
    return catalog


@pytest.fixture(params=[True, False], ids=["keyed", "keyless"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Catalog:
    catalog = Catalog(open_store(f"sqlite:///{tmp_path / 'store.db'}"), author="tester",
                      warehouse=str(tmp_path / "warehouse"))
    return table(catalog, request.param)


def handle(lake: Catalog, branch: str) -> Any:
    return lake.branch(branch).delta("db.t")


def expected(*changes: dict[int, tuple[int, str, int] | None]) -> list[tuple[Any, ...]]:
    out = {r[0]: r for r in BASE}
    for change in changes:
        for i, r in change.items():
            if r is None:
                out.pop(i, None)
            else:
                out[i] = r
    return sorted(out.values())


def merged_rows(lake: Catalog, **options: Any) -> list[tuple[Any, ...]]:
    result = lake.store.merge("dev", "main", **options)
    assert result.successful, result.conflicts
    assert result.details[0].statistics["row_merge"]["file_conflicts"]
    main = handle(lake, "main")
    got = rows(main)
    assert got == independent_rows(main)  # deltalake and the independent reader agree
    return got


def test_updates_of_different_ids_in_one_file_merge_to_both(lake: Catalog) -> None:
    handle(lake, "main").update({"v": "111"}, "id = 1")
    handle(lake, "dev").update({"v": "222"}, "id = 2")
    dry = lake.store.merge("dev", "main", dry_run=True)
    assert dry.successful and dry.stats["files_rewritten"] == 1
    assert dry.stats["bytes_written"] == 0
    before = data_files(handle(lake, "main"))
    assert merged_rows(lake) == expected(
        {1: (1, "a", 111)}, {2: (2, "a", 222)})
    assert len(data_files(handle(lake, "main")) - before) == 1


def test_deletes_of_different_ids_in_one_file_merge_to_both(lake: Catalog) -> None:
    handle(lake, "main").delete("id = 3")
    handle(lake, "dev").delete("id = 4")
    assert merged_rows(lake) == expected({3: None, 4: None})


def test_same_update_on_both_sides_merges_once(lake: Catalog) -> None:
    for branch in ("main", "dev"):
        handle(lake, branch).update({"v": "55"}, "id = 5")
    assert merged_rows(lake) == expected({5: (5, "a", 55)})


def test_keyed_same_cell_different_values_is_a_row_conflict(tmp_path: Path) -> None:
    lake = table(Catalog(open_store(f"sqlite:///{tmp_path / 'store.db'}"),
                         warehouse=str(tmp_path / "warehouse")), keyed=True)
    handle(lake, "main").update({"v": "1"}, "id = 5")
    handle(lake, "dev").update({"v": "2"}, "id = 5")
    main = handle(lake, "main")
    head, state = lake.branch("main").head.id, main.state()
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main")
    [conflict] = caught.value.conflicts
    assert conflict.type is ConflictType.ROW_CONFLICT
    assert conflict.details["keys"] == [{
        "key": {"id": 5}, "reason": "update/update", "columns": ["v"],
        "base": {"id": 5, "p": "a", "v": 50}, "target": {"id": 5, "p": "a", "v": 1},
        "source": {"id": 5, "p": "a", "v": 2}}]
    assert lake.branch("main").head.id == head and handle(lake, "main").state() == state
    assert merged_rows(lake, row_conflicts="source-wins") == expected({5: (5, "a", 2)})


def test_past_the_row_merge_limit_the_file_level_conflict_stands(tmp_path: Path) -> None:
    lake = table(Catalog(open_store(f"sqlite:///{tmp_path / 'store.db'}",
                                    limits=Limits(max_row_merge_bytes=10)),
                         warehouse=str(tmp_path / "warehouse")), keyed=True)
    handle(lake, "main").delete("id = 3")
    handle(lake, "dev").delete("id = 4")
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main")
    assert caught.value.conflicts[0].type.value == "ConcurrentDeleteDelete"


def keyed_lake(tmp_path: Path) -> Catalog:
    return table(Catalog(open_store(f"sqlite:///{tmp_path / 'store.db'}"),
                         warehouse=str(tmp_path / "warehouse")), keyed=True)


def append(lake: Catalog, branch: str, *rows_: tuple[int, str, int]) -> None:
    handle(lake, branch).append(pa.Table.from_pylist(
        [dict(zip(("id", "p", "v"), r, strict=True)) for r in rows_], schema=SCHEMA))


def test_both_sides_appending_one_new_key_take_it_once(tmp_path: Path) -> None:
    lake = keyed_lake(tmp_path)
    append(lake, "main", (11, "a", 110), (12, "a", 120))
    append(lake, "dev", (11, "a", 110), (13, "a", 130))
    assert merged_rows(lake) == expected({11: (11, "a", 110), 12: (12, "a", 120),
                                          13: (13, "a", 130)})


def test_both_sides_appending_one_new_key_differently_is_a_row_conflict(
        tmp_path: Path) -> None:
    lake = keyed_lake(tmp_path)
    append(lake, "main", (11, "a", 1))
    append(lake, "dev", (11, "a", 2))
    head, state = lake.branch("main").head.id, handle(lake, "main").state()
    with pytest.raises(ConflictError) as caught:
        lake.store.merge("dev", "main")
    [conflict] = caught.value.conflicts
    assert conflict.type is ConflictType.ROW_CONFLICT
    assert conflict.details["keys"][0]["key"] == {"id": 11}
    assert conflict.details["keys"][0]["reason"] == "insert/insert"
    assert lake.branch("main").head.id == head and handle(lake, "main").state() == state
    assert merged_rows(lake, row_conflicts="target-wins") == expected({11: (11, "a", 1)})
