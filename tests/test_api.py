"""The Python handles (`spark_lakeversion.connect`, Branch, Tag, Reference, Transaction).

Every test runs on each store backend (sqlite-memory, sqlite-file, PostgreSQL) through the
`store_url` fixture; "writes nothing" is checked by comparing every ref and every log.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

import spark_lakeversion as lv
from spark_lakeversion import errors
from spark_lakeversion.formats.delta.codes import DELTA_TABLE
from spark_lakeversion.model import Content, ContentType, Delete, DiffKind, Key, Put


def table(table_id: str, version: int) -> Content:
    return Content(DELTA_TABLE, table_id,
                   {"location": f"file:///lake/{table_id}", "version": version})


@pytest.fixture
def catalog(store_url: str) -> Iterator[lv.Catalog]:
    with lv.connect(store_url, author="tester") as cat:
        yield cat


@pytest.fixture
def seeded(catalog: lv.Catalog) -> lv.Catalog:
    """main: namespace `db`, tables db.orders (v1) and db.customers (v1)."""
    with catalog.branch("main").transaction("seed") as tx:
        tx.put("db", Content(ContentType.NAMESPACE, "ns-db", {"properties": {}}))
        tx.put("db.orders", table("orders", 1))
        tx.put("db.customers", table("customers", 1))
    return catalog


def snapshot(catalog: lv.Catalog) -> tuple[list[tuple[str, str, str]], dict[str, list[str]]]:
    """Every ref and every ref's full log: equal snapshots mean nothing was written."""
    refs = sorted((r.name, r.type.value, r.head) for r in catalog.store.list_refs())
    logs = {name: [c.id for c in catalog.ref(name).log()] for name, _, _ in refs}
    return refs, logs


# ---- connecting and handles ------------------------------------------------------------


def test_connect_starts_with_main_and_no_tags(catalog: lv.Catalog) -> None:
    assert [b.name for b in catalog.branches()] == ["main"]
    assert catalog.tags() == []
    head = catalog.branch("main").head
    assert isinstance(head, lv.Commit)
    assert catalog.ref("main").resolve().commit_id == head.id


def test_package_reexports_the_error_tree() -> None:
    for name in ("LakeVersionError", "InvalidName", "InvalidRefExpression", "NotFound",
                 "RefNotFound", "AlreadyExists", "ConflictError", "ReadOnlyRef",
                 "CommitOutcomeUnknown", "ReferenceConflict"):
        assert getattr(lv, name) is getattr(errors, name)


def test_importing_the_package_stays_light() -> None:
    code = ("import sys, spark_lakeversion; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pyspark', 'fastapi', 'pyiceberg', 'sqlalchemy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_a_catalog_wraps_any_version_store(store_url: str) -> None:
    from spark_lakeversion.wiring import open_store

    store = open_store(store_url)
    catalog = lv.Catalog(store)
    assert catalog.store is store
    assert catalog.branch("main").exists()
    catalog.close()


def test_server_urls_open_the_rest_client() -> None:
    from spark_lakeversion.versioning.http import RestVersionStore

    catalog = lv.connect("http://127.0.0.1:1")
    try:
        assert isinstance(catalog.store, RestVersionStore)
        with pytest.raises(lv.ServerError, match="cannot reach"):
            catalog.branch("main").exists()
    finally:
        catalog.close()


@pytest.mark.parametrize("bad", ["bad name", "HEAD", "-x", "a..b", "x/", "v1~1", "", "a:b"])
def test_bad_names_are_rejected_before_touching_the_store(catalog: lv.Catalog,
                                                          bad: str) -> None:
    before = snapshot(catalog)
    with pytest.raises(lv.InvalidName):
        catalog.branch(bad)
    with pytest.raises(lv.InvalidName):
        catalog.tag(bad)
    assert snapshot(catalog) == before


@pytest.mark.parametrize("bad", ["main~x", "main#yesterday", "~1", "a b", "main ", "#"])
def test_bad_ref_expressions_raise_typed_errors_and_write_nothing(seeded: lv.Catalog,
                                                                  bad: str) -> None:
    before = snapshot(seeded)
    with pytest.raises(lv.InvalidRefExpression):
        seeded.ref(bad)
    with pytest.raises(lv.InvalidRefExpression):
        seeded.branch("dev").create(from_=bad)
    assert snapshot(seeded) == before


def test_unknown_refs_raise_not_found_and_write_nothing(seeded: lv.Catalog) -> None:
    before = snapshot(seeded)
    with pytest.raises(lv.RefNotFound):
        seeded.branch("dev").create(from_="nope")
    with pytest.raises(lv.RefNotFound):
        _ = seeded.branch("nope").head
    with pytest.raises(lv.NotFound):
        seeded.ref("deadbeefdeadbeef").resolve()
    with pytest.raises(lv.RefNotFound):
        seeded.branch("nope").delete()
    assert not seeded.branch("nope").exists()
    assert snapshot(seeded) == before


# ---- branches and tags -----------------------------------------------------------------


def test_branch_create_accepts_names_handles_and_commits(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    a = seeded.branch("a").create(from_="main")
    b = seeded.branch("b").create(from_=main)
    c = seeded.branch("c").create(from_=main.head)
    d = seeded.branch("feature/d").create(from_=seeded.ref("main"))
    assert {x.head.id for x in (a, b, c, d)} == {main.head.id}
    assert sorted(x.name for x in seeded.branches()) == ["a", "b", "c", "feature/d", "main"]
    assert a.tables() == main.tables()


def test_creating_an_existing_branch_fails_unless_exist_ok(seeded: lv.Catalog) -> None:
    seeded.branch("dev").create()
    before = snapshot(seeded)
    with pytest.raises(lv.AlreadyExists):
        seeded.branch("dev").create()
    assert seeded.branch("dev").create(exist_ok=True).name == "dev"
    seeded.tag("v1").create()
    with pytest.raises(lv.AlreadyExists):
        seeded.branch("v1").create(exist_ok=True)  # exists, but as a tag
    assert snapshot(seeded)[0] == before[0] + [("v1", "TAG", seeded.tag("v1").head.id)]


def test_branch_handle_on_a_tag_name_is_not_found(seeded: lv.Catalog) -> None:
    seeded.tag("v1").create()
    with pytest.raises(lv.RefNotFound, match="it is a tag"):
        _ = seeded.branch("v1").head
    with pytest.raises(lv.RefNotFound):
        seeded.branch("v1").delete()
    assert seeded.tag("v1").exists()


def test_head_is_an_immutable_value(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    before = main.head
    main.commit([Put(Key.of("db.orders"), table("orders", 2))], message="v2")
    assert main.head != before
    assert main.head.parents == (before.id,)
    with pytest.raises(AttributeError):
        before.message = "changed"  # type: ignore[misc]


def test_delete_branch_and_tag(seeded: lv.Catalog) -> None:
    seeded.branch("dev").create().delete()
    tag = seeded.tag("v1").create()
    assert [t.name for t in seeded.tags()] == ["v1"]
    tag.delete()
    assert seeded.tags() == []
    assert [b.name for b in seeded.branches()] == ["main"]


def test_tags_do_not_move_and_are_read_only(seeded: lv.Catalog) -> None:
    v1 = seeded.tag("v1").create(from_="main")
    first = v1.head
    seeded.branch("main").commit([Put(Key.of("db.orders"), table("orders", 2))],
                                 message="v2")
    assert v1.head == first
    assert v1.table("db.orders") == table("orders", 1)
    assert [c.id for c in v1.log()] == [c.id for c in seeded.ref("main~1").log()]
    before = snapshot(seeded)
    with pytest.raises(lv.ReadOnlyRef):
        seeded.ref("main").merge_into("v1")
    with pytest.raises(lv.InvalidInput):
        seeded.ref("main").merge_into(v1)  # type: ignore[arg-type]
    assert snapshot(seeded) == before


# ---- reading ---------------------------------------------------------------------------


def test_tables_entries_and_table(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    assert list(main.tables()) == [Key.of("db.customers"), Key.of("db.orders")]
    assert Key.of("db") in main.entries()
    assert main.table("db.orders") == table("orders", 1)
    with pytest.raises(lv.KeyNotFound):
        main.table("db.nope")
    with pytest.raises(lv.InvalidKey):
        main.table("")


def test_diff_goes_from_this_ref_to_the_other(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    dev = seeded.branch("dev").create()
    dev.commit([Put(Key.of("db.returns"), table("returns", 1)),
                Put(Key.of("db.orders"), table("orders", 2)),
                Delete(Key.of("db.customers"))], message="dev work")
    kinds = {str(d.key): d.kind for d in main.diff(dev)}
    assert kinds == {"db.returns": DiffKind.ADDED, "db.orders": DiffKind.CHANGED,
                     "db.customers": DiffKind.REMOVED}
    reverse = {str(d.key): d.kind for d in dev.diff("main")}
    assert reverse["db.returns"] is DiffKind.REMOVED
    assert main.diff(main) == []


def test_log_pages_lazily_and_filters_by_table(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    for version in range(2, 6):
        main.commit([Put(Key.of("db.orders"), table("orders", version))],
                    message=f"orders v{version}")
    main.commit([Put(Key.of("db.customers"), table("customers", 2))], message="customers")
    everything = list(main.log(page_size=2))
    assert [c.message for c in everything[:3]] == ["customers", "orders v5", "orders v4"]
    assert everything == list(main.log())
    assert [c.message for c in main.log(limit=3, page_size=2)] == [
        "customers", "orders v5", "orders v4"]
    assert [c.message for c in main.log(table="db.orders", page_size=1)] == [
        "orders v5", "orders v4", "orders v3", "orders v2", "seed"]
    assert list(main.log(limit=0)) == []
    assert main.ancestor(1).head.message == "orders v5"
    # previous heads from the reflog: each commit moved main once
    assert main.previous().expression == "main@{1}"
    assert main.previous(1).head.message == "orders v5"
    assert main.previous(0).head == main.head
    assert seeded.ref("main@{5}").head.message == "seed"
    main.reset(main.previous(2))  # a reset is a move: main@{1} is the head it left
    assert main.head.message == "orders v4"
    assert main.previous(1).head.message == "customers"


# ---- transactions ----------------------------------------------------------------------


def test_transaction_commits_everything_as_one_commit(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    before = main.head
    with main.transaction("two tables", properties={"job": "nightly"}) as tx:
        tx.put("db.orders", table("orders", 2))
        tx.delete("db.customers")
        tx.put("db.orders", table("orders", 3))  # last change to a key wins
        assert tx.get("db.orders") == table("orders", 3)
        assert tx.get("db.customers") is None
        assert main.head == before  # nothing visible before exit
    assert tx.commit is not None
    assert main.head == tx.commit
    assert tx.commit.parents == (before.id,)
    assert tx.commit.message == "two tables"
    assert tx.commit.properties.get("job") == "nightly"
    assert tx.commit.author == "tester"
    assert main.tables() == {Key.of("db.orders"): table("orders", 3)}


def test_transaction_commits_nothing_on_error(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    before = snapshot(seeded)
    with pytest.raises(RuntimeError, match="job failed"), main.transaction("doomed") as tx:
        tx.put("db.orders", table("orders", 2))
        tx.put("db.new", table("new", 1))
        raise RuntimeError("job failed")
    assert tx.commit is None
    assert snapshot(seeded) == before
    assert main.table("db.orders") == table("orders", 1)


def test_empty_transaction_commits_nothing(seeded: lv.Catalog) -> None:
    before = snapshot(seeded)
    with seeded.branch("main").transaction() as tx:
        pass
    assert tx.commit is None
    assert snapshot(seeded) == before


def test_transaction_conflicts_if_its_tables_changed_since_enter(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    with pytest.raises(lv.ConflictError) as caught, main.transaction("stale") as tx:
        tx.put("db.orders", table("orders", 2))
        main.commit([Put(Key.of("db.orders"), table("orders", 7))], message="concurrent")
        after_concurrent = snapshot(seeded)
    assert [str(c.key) for c in caught.value.conflicts] == ["db.orders"]
    assert snapshot(seeded) == after_concurrent
    assert main.table("db.orders") == table("orders", 7)


def test_transaction_on_disjoint_tables_lands_after_a_concurrent_commit(
        seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    with main.transaction("disjoint") as tx:
        tx.put("db.orders", table("orders", 2))
        main.commit([Put(Key.of("db.customers"), table("customers", 2))], message="other")
    assert main.table("db.orders") == table("orders", 2)
    assert main.table("db.customers") == table("customers", 2)


def test_transaction_rejects_bad_input_and_use_outside_the_block(seeded: lv.Catalog) -> None:
    tx = seeded.branch("main").transaction()
    with pytest.raises(lv.InvalidInput):
        tx.put("db.orders", table("orders", 2))
    before = snapshot(seeded)
    with pytest.raises(lv.InvalidKey), tx:
        tx.put("", table("x", 1))
    with pytest.raises(lv.InvalidInput), seeded.branch("main").transaction() as tx2:
        tx2.put("db.x", {"type": "DELTA_TABLE"})  # type: ignore[arg-type]
    with pytest.raises(lv.InvalidInput), tx:
        pass  # entered once already
    with pytest.raises(lv.RefNotFound), seeded.branch("nope").transaction():
        pass
    assert snapshot(seeded) == before


# ---- merging, reverting, rolling back --------------------------------------------------


def _diverge(catalog: lv.Catalog) -> tuple[lv.Branch, lv.Branch]:
    """dev and main both change db.orders; dev also adds db.returns."""
    main = catalog.branch("main")
    dev = catalog.branch("dev").create(from_=main)
    dev.commit([Put(Key.of("db.orders"), table("orders", 2)),
                Put(Key.of("db.returns"), table("returns", 1))], message="dev")
    main.commit([Put(Key.of("db.orders"), table("orders", 3))], message="main")
    return main, dev


def test_merge_fast_forwards_and_no_ff_makes_a_merge_commit(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    dev = seeded.branch("dev").create()
    dev.commit([Put(Key.of("db.returns"), table("returns", 1))], message="add returns")
    other = seeded.branch("other").create()
    other.commit([Put(Key.of("db.x"), table("x", 1))], message="x")
    result = dev.merge_into(main)
    assert result.fast_forward and result.new_head == dev.head.id == main.head.id
    merged = other.merge_into("main", fast_forward=False, message="merge other")
    assert not merged.fast_forward
    assert main.head.parents == (dev.head.id, other.head.id)
    assert main.head.message == "merge other"


def test_merge_conflict_raises_with_the_result_and_writes_nothing(seeded: lv.Catalog) -> None:
    main, dev = _diverge(seeded)
    before = snapshot(seeded)
    with pytest.raises(lv.ConflictError) as caught:
        dev.merge_into(main)
    error = caught.value
    assert [(str(c.key), c.type.value) for c in error.conflicts] == [
        ("db.orders", "VALUE_DIFFERS")]
    assert error.result is not None and error.result.new_head is None
    assert snapshot(seeded) == before


def test_dry_run_merge_reports_conflicts_and_writes_nothing(seeded: lv.Catalog) -> None:
    main, dev = _diverge(seeded)
    before = snapshot(seeded)
    preview = dev.merge_into(main, dry_run=True)
    assert preview.dry_run and not preview.successful and preview.new_head is None
    ok_preview = dev.merge_into(main, dry_run=True, strategy="source-wins")
    assert ok_preview.successful and ok_preview.new_head is None
    assert snapshot(seeded) == before


@pytest.mark.parametrize("how, orders_version, returns_merged", [
    ({"behaviors": {"db.orders": "source-wins"}}, 2, True),
    ({"behaviors": {Key.of("db.orders"): lv.MergeBehavior.DROP}}, 3, True),
    ({"strategy": "source-wins"}, 2, True),
    # target-wins as the default drops every source change, the new table included
    ({"strategy": "target-wins"}, 3, False),
])
def test_merge_strategies_resolve_conflicts(seeded: lv.Catalog, how: dict[str, object],
                                            orders_version: int, returns_merged: bool) -> None:
    main, dev = _diverge(seeded)
    result = dev.merge_into(main, **how)  # type: ignore[arg-type]
    assert result.successful and result.new_head == main.head.id
    assert main.table("db.orders") == table("orders", orders_version)
    assert (Key.of("db.returns") in main.tables()) is returns_merged


def test_unknown_strategy_is_bad_input_and_writes_nothing(seeded: lv.Catalog) -> None:
    main, dev = _diverge(seeded)
    before = snapshot(seeded)
    with pytest.raises(lv.InvalidInput, match="unknown merge strategy"):
        dev.merge_into(main, strategy="ours")
    with pytest.raises(lv.InvalidInput):
        dev.merge_into(main, behaviors={"db.orders": "whatever"})
    assert snapshot(seeded) == before


def test_revert_undoes_one_commit(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    bad = main.commit([Put(Key.of("db.orders"), table("orders", 2)),
                       Delete(Key.of("db.customers"))], message="bad")
    main.commit([Put(Key.of("db.x"), table("x", 1))], message="later")
    preview = main.revert(bad, dry_run=True)
    assert preview.dry_run and main.head.message == "later"
    result = main.revert(bad.id[:10])
    assert result.new_head == main.head.id
    assert main.table("db.orders") == table("orders", 1)
    assert main.table("db.customers") == table("customers", 1)
    assert main.table("db.x") == table("x", 1)


def test_rollback_table_restores_one_table_only(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    v1 = seeded.tag("v1").create()
    main.commit([Put(Key.of("db.orders"), table("orders", 9)),
                 Put(Key.of("db.customers"), table("customers", 2))], message="both")
    commit = main.rollback_table("db.orders", to=v1, message="undo orders")
    assert main.head == commit and commit.message == "undo orders"
    assert main.table("db.orders") == table("orders", 1)
    assert main.table("db.customers") == table("customers", 2)
    before = snapshot(seeded)
    with pytest.raises(lv.KeyNotFound):
        main.rollback_table("db.never", to=v1)
    with pytest.raises(lv.ReadOnlyRef):
        seeded.store.rollback_table("v1", "db.orders", "main")
    assert snapshot(seeded) == before


def test_reset_moves_the_branch(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    start = main.head
    main.commit([Put(Key.of("db.orders"), table("orders", 2))], message="v2")
    dev = seeded.branch("dev").create()
    dev.reset(start)
    assert dev.head == start
    dev.reset("main")
    assert dev.head == main.head
    with pytest.raises(lv.ReferenceConflict):
        dev.reset(start, expected_head=start.id)
    with pytest.raises(lv.RefNotFound):
        seeded.branch("ghost").reset("main")
    assert [b.name for b in seeded.branches()] == ["dev", "main"]


def test_cherry_pick_applies_chosen_commits(seeded: lv.Catalog) -> None:
    main = seeded.branch("main")
    dev = seeded.branch("dev").create()
    wanted = dev.commit([Put(Key.of("db.a"), table("a", 1))], message="a")
    dev.commit([Put(Key.of("db.b"), table("b", 1))], message="b")
    main.cherry_pick(wanted)
    assert Key.of("db.a") in main.tables() and Key.of("db.b") not in main.tables()
    with pytest.raises(lv.InvalidInput):
        main.cherry_pick()
