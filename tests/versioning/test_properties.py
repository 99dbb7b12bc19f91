"""Property-based tests: the key tree against a dict, and the merge laws."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_lakeversion.model import Delete, Key, Put
from spark_lakeversion.versioning.tree import Node, Trees, TreeWriter
from spark_lakeversion.wiring import open_store
from tests.versioning.helpers import table

KEYS = st.sampled_from([f"db.t{i:03d}" for i in range(60)] + ["a.b.c", "x"])
# a change: key -> new version string, or None to delete
CHANGES = st.dictionaries(KEYS, st.one_of(st.none(), st.integers(0, 5).map(str)),
                          max_size=12)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _ops(changes: dict[str, str | None]) -> list[Put | Delete]:
    return [Delete(Key.of(k)) if v is None else Put(Key.of(k), table(k, v))
            for k, v in changes.items()]


def _state(store: object, ref: str) -> dict[str, object]:
    return {str(k): v for k, v in store.list_keys(ref)}  # type: ignore[attr-defined]


def _two_sided(base: dict[str, str | None], left: dict[str, str | None],
               right: dict[str, str | None]) -> tuple[Any, dict[str, object]]:
    """A store with `base` on main, then `left` on main and `right` on dev; and the state
    merging dev into main must give (`right` and `left` touch different keys)."""
    store = open_store("sqlite:///:memory:")
    if base:
        store.commit("main", _ops(base), message="base")
    store.create_ref("dev")
    if left:
        store.commit("main", _ops(left), message="left")
    if right:
        store.commit("dev", _ops(right), message="right")
    expected = _state(store, "main")
    for k, v in right.items():
        if v is None:
            expected.pop(k, None)
        else:
            expected[k] = table(k, v)
    return store, expected


@SETTINGS
@given(st.lists(st.dictionaries(st.text("abcdefghij", min_size=1, max_size=4),
                                st.one_of(st.none(), st.text("xyz", max_size=3)),
                                max_size=80), min_size=1, max_size=6))
def test_tree_matches_a_dict_and_is_canonical(batches: list[dict[str, str | None]]) -> None:
    nodes: dict[str, Node] = {}
    trees = Trees(nodes.__getitem__)
    model: dict[str, str] = {}
    root = None
    for batch in batches:
        writer = TreeWriter()
        old = root
        root = trees.apply(root, batch, writer)
        nodes.update(writer.nodes)
        old_model = dict(model)
        for k, v in batch.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        assert dict(trees.items(root)) == model
        fresh = TreeWriter()
        assert trees.build(sorted(model.items()), fresh) == root  # history-independent
        nodes.update(fresh.nodes)
        expected = sorted((k, old_model.get(k), model.get(k))
                          for k in old_model.keys() | model.keys()
                          if old_model.get(k) != model.get(k))
        assert list(trees.diff(old, root)) == expected


@SETTINGS
@given(base=CHANGES, work=CHANGES)
def test_merging_a_branch_into_itself_changes_nothing(base: dict[str, str | None],
                                                      work: dict[str, str | None]) -> None:
    store = open_store("sqlite:///:memory:")
    if base:
        store.commit("main", _ops(base), message="base")
    if work:
        store.commit("main", _ops(work), message="work")
    head = store.get_ref("main").head
    result = store.merge("main", "main")
    assert result.details == ()
    assert store.get_ref("main").head == head


@SETTINGS
@given(base=CHANGES, left=CHANGES, right=CHANGES)
def test_merging_disjoint_changes_equals_applying_both(
        base: dict[str, str | None], left: dict[str, str | None],
        right: dict[str, str | None]) -> None:
    right = {k: v for k, v in right.items() if k not in left}  # disjoint keys
    store, expected = _two_sided(base, left, right)
    result = store.merge("dev", "main")
    assert result.successful
    assert _state(store, "main") == expected


@SETTINGS
@given(base=CHANGES, change=CHANGES.filter(bool), later=CHANGES)
def test_revert_restores_the_previous_table_states(
        base: dict[str, str | None], change: dict[str, str | None],
        later: dict[str, str | None]) -> None:
    later = {k: v for k, v in later.items() if k not in change}  # untouched by the revert
    store = open_store("sqlite:///:memory:")
    if base:
        store.commit("main", _ops(base), message="base")
    before = _state(store, "main")
    commit = store.commit("main", _ops(change), message="change")
    if later:
        store.commit("main", _ops(later), message="later")
    store.revert(commit.id, "main")
    after = _state(store, "main")
    for k in change:
        assert after.get(k) == before.get(k)
    for k, v in later.items():
        assert after.get(k) == (None if v is None else table(k, v))


BIG_KEYS = st.sampled_from([f"db{i % 5}.t{i:03d}" for i in range(200)])
BIG_CHANGES = st.dictionaries(BIG_KEYS, st.one_of(st.none(), st.integers(0, 5).map(str)),
                              min_size=17, max_size=60)


@SETTINGS
@given(base=BIG_CHANGES, left=CHANGES, right=BIG_CHANGES)
def test_a_big_source_merged_into_a_small_target_gives_the_same_tree(
        base: dict[str, str | None], left: dict[str, str | None],
        right: dict[str, str | None]) -> None:
    """Large merges are built on the source's tree (fewer edits); the result must be the
    same canonical tree as base + both sides' changes."""
    right = {k: v for k, v in right.items() if k not in left}
    store, expected = _two_sided(base, left, right)
    result = store.merge("dev", "main", fast_forward=False)
    assert _state(store, "main") == expected
    merged = store.get_commit(result.new_head or "")
    fresh = open_store("sqlite:///:memory:")  # the same content built in one commit
    fresh_commit = fresh.commit("main", [Put(Key.of(k), v) for k, v in expected.items()],
                                message="all") if expected else None
    assert merged.root == (fresh_commit.root if fresh_commit else None)
    # the merge commit records the keys it changed relative to main, not to dev
    changed_on_main = {str(d.key) for d in store.diff(f"{merged.id}~1", merged.id)}
    logged = {k for k in {*left, *right}
              if merged.id in {c.id for c in store.log("main", key=k, limit=1000).commits}}
    assert logged == changed_on_main
