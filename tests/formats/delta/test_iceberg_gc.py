"""gc knows the Iceberg metadata served for Delta tables: kept while a retained state
reaches it, collected once none does."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import StaticTable

from spark_lakeversion.api import Catalog
from spark_lakeversion.formats.delta.iceberg import translate
from tests.formats.delta.helpers import data


def _age(root: str, seconds: float) -> None:
    then = time.time() - seconds
    for path in Path(unquote(root[7:])).rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def _files(directory: str) -> set[str]:
    base = Path(unquote(directory[7:]))
    return {str(p) for p in base.iterdir()} if base.exists() else set()


def _rows(location: str) -> list[tuple[object, ...]]:
    table = StaticTable.from_metadata(location)
    table.io = PyArrowFileIO()
    got = table.scan().to_arrow()
    return sorted(zip(*(got.column(c).to_pylist() for c in ("id", "p", "v"))))


# local only: it ages files with os.utime to pass gc's grace period (gc of Delta tables on
# S3, with the lake's FileIO, is in test_rollback_gc.py)
@pytest.mark.parametrize("lake", ["local"], indirect=True)
def test_gc_keeps_served_metadata_while_reached_and_collects_it_after(
        events: Catalog, tmp_path: Path) -> None:
    main = events.branch("main").delta("db.events")
    served_main = translate.load(main.state())
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    dev.append(data((9, "z", 90)))
    dev_state = dev.state()
    served_dev = translate.load(dev_state)  # reuses main's manifests up to the fork
    main_meta = translate.meta_dir(main.state().location)
    dev_meta = translate.meta_dir(dev_state.location)
    kept = _files(main_meta)
    assert kept and _files(dev_meta)
    # a file of a version no retained state reaches (a log that moved on without one)
    stray = Path(unquote(main_meta[7:])) / f"v{99:020d}-orphan-m0.avro"
    stray.write_bytes(b"x")
    root = main.state().root
    _age(root, 3 * 86400)
    roots = [str(tmp_path / "warehouse")]
    events.collect_garbage(roots=roots, older_than="1d", keep_commits_since="0s")
    assert _files(main_meta) == kept - {str(stray)}
    assert not stray.exists()
    assert _files(dev_meta)
    assert _rows(served_main.location) == [(1, "a", 10), (2, "a", 20), (3, "b", 30),
                                           (4, "a", 40)]
    assert _rows(served_dev.location) == [(1, "a", 10), (2, "a", 20), (3, "b", 30),
                                          (4, "a", 40), (9, "z", 90)]
    events.branch("dev").delete(force=True)
    _age(root, 3 * 86400)
    events.collect_garbage(roots=roots, older_than="1d", keep_commits_since="0s")
    assert _files(dev_meta) == set()
    assert _files(main_meta) == kept - {str(stray)}


@pytest.mark.parametrize("lake", ["local"], indirect=True)  # ages files: local only
def test_a_branch_of_a_deleted_branch_keeps_the_manifests_it_reuses(
        events: Catalog, tmp_path: Path) -> None:
    events.branch("a").create()
    a = events.branch("a").delta("db.events")
    a.append(data((5, "a", 50)))
    a_state = a.state()
    translate.load(a_state)
    events.branch("b").create(from_="a")
    b = events.branch("b").delta("db.events")
    b.append(data((6, "b", 60)))
    served_b = translate.load(b.state())  # a's history, then b's own version
    events.branch("a").delete(force=True)
    root = a_state.root
    _age(root, 3 * 86400)
    events.collect_garbage(roots=[str(tmp_path / "warehouse")], older_than="1d",
                           keep_commits_since="0s")
    assert _files(translate.meta_dir(a_state.location))  # b's served history reads them
    assert _rows(served_b.location) == [(1, "a", 10), (2, "a", 20), (3, "b", 30),
                                        (4, "a", 40), (5, "a", 50), (6, "b", 60)]
