"""Our own Delta log writes on local files and S3: put-if-absent (a version someone wrote
first is a lost race, never overwritten), and a long branch log's checkpoint, written and
cleaned up through the same operations."""

from __future__ import annotations

import pytest

from spark_lakeversion.formats.delta import branching, log, storage
from tests.formats.delta.helpers import DeltaLake, all_files, data, independent_rows, rows


def test_put_if_absent_never_overwrites(lake: DeltaLake) -> None:
    uri = f"{lake.catalog.warehouse}/t/_delta_log/{log.log_name(0)}"
    assert storage.read_bytes(uri, lake.io) is None
    assert storage.put_if_absent(uri, b"first\n", lake.io)
    assert not storage.put_if_absent(uri, b"second\n", lake.io)  # the lost race
    assert storage.read_bytes(uri, lake.io) == b"first\n"
    assert storage.size(uri, lake.io) == 6
    assert log.latest_version(f"{lake.catalog.warehouse}/t", lake.io) == 0
    assert log.write_commit(f"{lake.catalog.warehouse}/t", 0, [], "X", io=lake.io) is None
    storage.remove(uri, lake.io)
    storage.remove(uri, lake.io)  # gone already: nothing to do
    assert storage.list_names(f"{lake.catalog.warehouse}/t/_delta_log", lake.io) == []


def test_a_long_branch_log_gets_a_checkpoint_and_a_refused_write_removes_it(
        lake: DeltaLake, monkeypatch: pytest.MonkeyPatch) -> None:
    from spark_lakeversion.errors import InvalidInput

    cat = lake.catalog
    main = cat.branch("main").delta("db.events")
    main.create(data().schema, partition_by=["p"])
    for i in range(3):
        main.append(data((i, "abc"[i], i)))
    cat.branch("dev").create()
    dev = cat.branch("dev").delta("db.events")
    monkeypatch.setattr(branching, "CHECKPOINT_FILES", 2)
    root = main.state().root
    before = all_files(root, lake.io)
    with pytest.raises(InvalidInput):  # the fork is written, then the write is refused
        dev.append(data((9, "a", 9)).drop_columns(["v"]))
    assert all_files(root, lake.io) == before  # the branch log and its checkpoint are gone
    dev.append(data((9, "a", 9)))
    state = dev.state()
    names = storage.list_names(log.log_dir(state.location), lake.io)
    assert any(n.endswith(".checkpoint.parquet") for n in names) and "_last_checkpoint" in names
    expected = [(0, "a", 0), (1, "b", 1), (2, "c", 2), (9, "a", 9)]
    assert rows(dev) == expected == independent_rows(dev)


def test_a_refused_commit_leaves_no_file_on_either_backend(lake: DeltaLake) -> None:
    """A write on a protected branch (refused by the store after the files are written)
    and a fork's refused first write both take back everything they wrote."""
    from spark_lakeversion.errors import ProtectedBranch

    cat = lake.catalog
    main = cat.branch("main").delta("db.events")
    main.create(data().schema, partition_by=["p"])
    main.append(data((1, "a", 1)))
    cat.branch("dev").create()
    cat.branch("main").protect()
    root = main.state().root
    before = all_files(root, lake.io)
    with pytest.raises(ProtectedBranch):
        main.append(data((2, "b", 2)))
    with pytest.raises(ProtectedBranch):
        main.delete("id = 1")
    assert all_files(root, lake.io) == before
    cat.branch("dev").delta("db.events").delete("id = 1")  # dev is not protected
    assert rows(cat.branch("dev").delta("db.events")) == []
    assert rows(main) == [(1, "a", 1)]
