"""Main takes back a Delta table it had and dropped: by merging it again from a branch
that kept it (`source-wins`: the drop and the branch's change conflict), by a fast-forward
onto a branch that has it again, or by rolling back to such a branch's state. Its state is
written as the next version of the root log main wrote: never as version 0 again (which
is there already), and never as a pointer to the branch's log (which would leave plain
readers of the root on the state main dropped). A root log main's lineage never reached
(someone else's) stays theirs: a conflict, as before. On local files and on S3 (moto)."""

from __future__ import annotations

import pytest

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import ChecksFailed, ConflictError
from spark_lakeversion.formats.delta import log
from spark_lakeversion.formats.delta.content import DeltaState
from spark_lakeversion.model import MergeAction
from tests.formats.delta.helpers import (
    DeltaLake,
    Rows,
    data,
    newest_version,
    own_log,
    plain_rows,
    rows,
)
from tests.formats.delta.test_new_tables_on_branches import NEGATIVE, fresh_on, main_on_root


def taken_back_reason(table: str) -> str:
    return (f"{table} is a Delta table 'main' had, whose root log it writes again: the "
            "state is written there as a new version (no fast-forward)")


def drop_on_main(catalog: Catalog, table: str) -> None:
    with catalog.branch("main").transaction(f"drop {table}") as tx:
        tx.delete(table)


def kept_on(events: Catalog, branch: str) -> DeltaState:
    """`db.fresh` born on `branch` with one row, taken by main (root version 0) and dropped
    there, then given one more row on `branch`: `branch`'s state."""
    born = fresh_on(events, branch, (1, "a", 1))
    events.store.merge(branch, "main")
    drop_on_main(events, "db.fresh")
    handle = events.branch(branch).delta("db.fresh")
    handle.append(data((2, "b", 2)))
    assert handle.state().root == born.root
    return handle.state()


def test_a_table_born_on_a_branch_comes_back_by_merge_as_the_root_logs_next_version(
        lake: DeltaLake, events: Catalog) -> None:
    dev = fresh_on(events, "dev", (1, "a", 1))
    events.store.merge("dev", "main")  # main takes the table: root version 0
    main_on_root(lake, events, dev.root, 0, [(1, "a", 1)])
    drop_on_main(events, "db.fresh")
    events.branch("dev").delta("db.fresh").append(data((2, "b", 2)))
    with pytest.raises(ConflictError, match="dropped on the target"):
        events.store.merge("dev", "main")
    dry = events.store.merge("dev", "main", strategy="source-wins", dry_run=True)
    assert [d.action for d in dry.details] == [MergeAction.APPLIED]
    assert newest_version(dev.root, lake.io) == 0  # a dry run writes nothing
    # was: ConflictError "has a log already" (root version 0 is there)
    events.store.merge("dev", "main", strategy="source-wins")
    expected: Rows = [(1, "a", 1), (2, "b", 2)]
    main_on_root(lake, events, dev.root, 1, expected)
    assert log.commit_info(1, dev.root, lake.io)["operation"] == log.OP_MERGE
    dev_handle = events.branch("dev").delta("db.fresh")
    dev_handle.append(data((3, "a", 3)))  # dev's next write stays on its own log
    assert newest_version(dev.root, lake.io) == 1
    events.branch("main").delta("db.fresh").append(data((4, "b", 4)))  # main's: in place
    main_on_root(lake, events, dev.root, 2, [*expected, (4, "b", 4)])
    assert rows(dev_handle) == [*expected, (3, "a", 3)]


def test_a_fast_forward_onto_a_branch_that_has_the_table_again_is_a_merge_commit(
        lake: DeltaLake, events: Catalog) -> None:
    qa = kept_on(events, "qa")
    events.branch("dev").create()  # from main, after the drop
    events.branch("dev").rollback_table("db.fresh", to="qa")  # dev: qa's log state
    dry = events.store.merge("dev", "main", dry_run=True)
    assert (dry.fast_forward, dry.no_ff_reason) == (False, taken_back_reason("db.fresh"))
    result = events.store.merge("dev", "main")
    assert (result.fast_forward, result.no_ff_reason) == (
        False, taken_back_reason("db.fresh"))
    main_on_root(lake, events, qa.root, 1, [(1, "a", 1), (2, "b", 2)])


def test_a_table_born_on_main_comes_back_by_merge_onto_its_root_log(
        lake: DeltaLake, events: Catalog) -> None:
    """Before: main pointed at dev's branch log and plain readers of the root kept reading
    the state main had dropped."""
    events.branch("dev").create()
    dev = events.branch("dev").delta("db.events")
    dev.append(data((5, "b", 50)))  # dev's first write: a branch log started from the root
    root = dev.state().root
    before = newest_version(root, lake.io)
    drop_on_main(events, "db.events")
    dropped: Rows = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]
    assert plain_rows(lake, root) == {"duckdb": dropped, "deltalake": dropped}
    events.store.merge("dev", "main", strategy="source-wins")
    main = events.branch("main").delta("db.events").state()
    assert (main.location, main.version, main.writer) == (root, before + 1, "main")
    expected = sorted([*dropped, (5, "b", 50)])
    assert plain_rows(lake, root) == {"duckdb": expected, "deltalake": expected}
    assert rows(events.branch("main").delta("db.events")) == expected


def test_a_rollback_to_a_branchs_state_takes_the_table_back_onto_the_root_log(
        lake: DeltaLake, events: Catalog) -> None:
    dev = kept_on(events, "dev")
    events.branch("main").rollback_table("db.fresh", to="dev")
    main_on_root(lake, events, dev.root, 1, [(1, "a", 1), (2, "b", 2)])


def test_a_gated_merge_takes_a_table_back_only_when_its_checks_pass(
        lake: DeltaLake, events: Catalog) -> None:
    dev = fresh_on(events, "dev", (1, "a", 1))
    events.store.merge("dev", "main")
    drop_on_main(events, "db.fresh")
    main = events.branch("main")
    main.add_check("non-negative", sql=NEGATIVE, allow_missing=True)
    events.branch("dev").delta("db.fresh").append(data((2, "b", -2)))
    root_log = own_log(lake, dev.root)
    head = main.head.id
    with pytest.raises(ChecksFailed):
        events.store.merge("dev", "main", strategy="source-wins")
    assert main.head.id == head and own_log(lake, dev.root) == root_log
    events.branch("dev").delta("db.fresh").delete("v < 0")
    events.branch("dev").delta("db.fresh").append(data((3, "a", 3)))
    events.store.merge("dev", "main", strategy="source-wins")
    main_on_root(lake, events, dev.root, 1, [(1, "a", 1), (3, "a", 3)])


def test_a_root_log_main_never_wrote_stays_a_conflict(
        lake: DeltaLake, events: Catalog) -> None:
    """Version 0 of the root written by someone else, naming no log of dev's lineage: the
    table was never main's there, so it is not taken back."""
    dev = fresh_on(events, "dev", (1, "a", 1))
    other = log.read_state(dev.location, dev.version, io=lake.io)
    assert log.write_commit(dev.root, 0, [{"protocol": other.protocol},
                                          {"metaData": other.metadata}],
                            log.OP_MERGE, {"sourceLocation": dev.root + "/elsewhere"},
                            io=lake.io) is not None
    root_log = own_log(lake, dev.root)
    head = events.branch("main").head.id
    with pytest.raises(ConflictError, match="has a log already"):
        events.store.merge("dev", "main")
    assert events.branch("main").head.id == head and own_log(lake, dev.root) == root_log
