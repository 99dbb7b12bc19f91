"""A reset of main never leaves a Delta table where plain readers of its root do not read
main's state: main owns each table's root log, and a reset writes nothing, so main may be
pointed only at states that are the newest version of their root log. A state on a
branch log (a table born on a branch, or a branch's change) or an older root version (an
undo) is refused, typed, with nothing moved or written: a rollback or a merge writes it
(`test_new_tables_by_picks`, `test_tables_taken_back`). Other branches reset freely (they
own no root log), and so does main where no Delta state changes. On local files and on
S3 (moto)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from spark_lakeversion.api import Catalog
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import ConflictError, ExitCode, ProtectedBranch
from tests.formats.delta.helpers import ID_P_V_ARROW, DeltaLake, data, plain_rows, rows
from tests.formats.delta.test_new_tables_on_branches import fresh_on, no_table_at

EVENTS = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "a", 40)]


def refused(catalog: Catalog, to: str, wording: str, force: bool = False) -> None:
    """Resetting main to `to` is a ConflictError saying `wording`; main does not move."""
    head = catalog.branch("main").head.id
    with pytest.raises(ConflictError) as caught:
        catalog.branch("main").reset(to, force=force)
    assert wording in caught.value.message and "rollback" in caught.value.message
    assert catalog.branch("main").head.id == head


def test_main_is_not_reset_onto_a_table_born_on_a_branch(
        lake: DeltaLake, events: Catalog) -> None:
    dev = fresh_on(events, "dev", (1, "a", 1))
    refused(events, "dev", "db.fresh is a Delta table new to 'main'")
    no_table_at(lake, dev.root)  # nothing written
    with pytest.raises(Exception, match="db.fresh"):
        events.branch("main").delta("db.fresh").state()


def test_main_is_not_reset_onto_a_branch_s_change(lake: DeltaLake, events: Catalog) -> None:
    events.branch("dev").create()
    events.branch("dev").delta("db.events").append(data((5, "b", 50)))
    root = events.branch("main").delta("db.events").state().root
    refused(events, "dev", "db.events")
    assert rows(events.branch("main").delta("db.events")) == EVENTS
    assert plain_rows(lake, root) == {"duckdb": EVENTS, "deltalake": EVENTS}


def test_main_is_not_reset_back_to_an_older_root_version(
        lake: DeltaLake, events: Catalog) -> None:
    """An undo by reset would leave plain readers of the root on the undone version; the
    refusal says so, a protected main's forced reset too, and a rollback does it."""
    main = events.branch("main").delta("db.events")
    main.delete("id = 4")
    root = main.state().root
    left = [r for r in EVENTS if r[0] != 4]
    refused(events, "main~1", "version 2 of its root log, whose newest version is 3")
    events.branch("main").protect()
    refused(events, "main~1", "version 2 of its root log, whose newest version is 3", force=True)
    assert plain_rows(lake, root) == {"duckdb": left, "deltalake": left}
    events.branch("main").unprotect()
    events.branch("main").rollback_table("db.events", to="main~1")
    assert rows(main) == EVENTS
    assert plain_rows(lake, root) == {"duckdb": EVENTS, "deltalake": EVENTS}


def test_protection_refuses_first(lake: DeltaLake, events: Catalog) -> None:
    """A reset a protected main's own guards refuse says so: without force, or forced to
    a state never published on it, `ProtectedBranch` (not the Delta rule's conflict)."""
    fresh_on(events, "dev", (1, "a", 1))
    events.branch("main").protect()
    head = events.branch("main").head.id
    for force in (False, True):
        with pytest.raises(ProtectedBranch):
            events.branch("main").reset("dev", force=force)
    assert events.branch("main").head.id == head


def test_resets_that_leave_the_root_read_as_main_go_through(
        lake: DeltaLake, events: Catalog) -> None:
    # main back past a table it created: no state main keeps changes (as a drop)
    events.branch("keep").create()
    events.branch("main").delta("db.other").create(ID_P_V_ARROW)
    events.branch("main").reset("keep")
    assert events.branch("main").head.id == events.branch("keep").head.id
    assert "db.other" not in {str(k) for k, _ in events.store.list_keys("main")}
    assert rows(events.branch("main").delta("db.events")) == EVENTS
    # another branch, onto anything: it owns no root log
    events.branch("dev").create()
    events.branch("dev").delta("db.events").append(data((5, "b", 50)))
    events.branch("dev").reset("keep")
    assert rows(events.branch("dev").delta("db.events")) == EVENTS
    fresh_on(events, "side", (1, "a", 1))
    events.branch("dev").reset("side")
    assert rows(events.branch("dev").delta("db.fresh")) == [(1, "a", 1)]


def test_the_cli_says_why(lake: DeltaLake, events: Catalog) -> None:
    fresh_on(events, "dev", (1, "a", 1))
    head = events.branch("main").head.id
    # the CLI's store opens files as the test's does (S3: moto's properties, by env)
    env = {"PYICEBERG_" + k.upper().replace(".", "__").replace("-", "_"): v
           for k, v in lake.io.items()}
    result = CliRunner().invoke(cli, ["--store", lake.store_url, "reset", "main", "--to",
                                      "dev"], env=env)
    assert result.exit_code == ExitCode.CONFLICT, result.output
    assert "db.fresh is a Delta table new to 'main'" in result.output
    assert "Traceback" not in result.output
    assert events.branch("main").head.id == head
