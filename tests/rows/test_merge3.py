"""The three-way row rule (`rows.merge3`) against a plain reference written here, for random
ancestors and random edits on both sides, keyed and keyless; and the issue's cases by name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.rows.merge3 import (
    COUNT_COUNT,
    DELETE_UPDATE,
    UPDATE_UPDATE,
    count_rows,
    merge_keyed,
    merge_keyless,
    parse_resolution,
)
from tests.rows.helpers import keyless_sides, reference_keyed, reference_keyless

VALUES = st.integers(0, 2)
ROWS = st.tuples(VALUES, VALUES)  # two value columns besides the key


@st.composite
def keyed_sides(draw: st.DrawFn) -> tuple[dict, dict, dict]:
    base = draw(st.dictionaries(st.integers(0, 6), ROWS, max_size=6))

    def edit() -> dict:
        side = dict(base)
        for key in draw(st.lists(st.integers(0, 8), max_size=5)):
            action = draw(st.sampled_from(["delete", "update", "upsert"]))
            if action == "delete":
                side.pop(key, None)
            elif action == "update" and key in side:
                col = draw(st.integers(0, 1))
                row = list(side[key])
                row[col] = draw(VALUES)
                side[key] = tuple(row)
            else:
                side[key] = draw(ROWS)
        return side

    return base, edit(), edit()


@settings(max_examples=400, deadline=None)
@given(keyed_sides(), st.sampled_from([None, "source-wins", "target-wins"]))
def test_keyed_rule_matches_reference(sides: tuple[dict, dict, dict], resolution: str | None
                                      ) -> None:
    base, target, source = sides
    got = merge_keyed(base, target, source, resolution)
    want_rows, want_conflicts = reference_keyed(base, target, source, resolution)
    assert got.rows == want_rows
    if resolution is None:
        assert {c.identity for c in got.conflicts} == want_conflicts
        assert got.resolved == 0
    else:
        assert got.conflicts == [] and got.resolved == len(want_conflicts)
    assert got.changed == {k for k in set(got.rows) | set(target)
                           if got.rows.get(k) != target.get(k)}


@settings(max_examples=400, deadline=None)
@given(keyless_sides(ROWS), st.sampled_from([None, "source-wins", "target-wins"]))
def test_keyless_rule_matches_reference(sides: tuple[list, list, list],
                                        resolution: str | None) -> None:
    base, target, source = sides
    got = merge_keyless(count_rows(base), count_rows(target), count_rows(source), resolution)
    rows = sorted((r for r, n in got.rows.items() for _ in range(n)), key=repr)
    want_rows, want_conflicts = reference_keyless(base, target, source, resolution)
    if resolution is None:
        assert {c.identity for c in got.conflicts} == want_conflicts
        if want_conflicts:
            return  # conflicts are reported; the rows stay the target's
    assert rows == want_rows


BASE = {1: ("a", 10), 2: ("b", 20), 3: ("c", 30)}


def test_updates_of_different_ids_both_apply() -> None:
    target = {**BASE, 1: ("A", 10)}
    source = {**BASE, 2: ("b", 21)}
    got = merge_keyed(BASE, target, source)
    assert got.conflicts == []
    assert got.rows == {1: ("A", 10), 2: ("b", 21), 3: ("c", 30)}
    assert got.changed == {2}


def test_deletes_of_different_ids_both_apply() -> None:
    target = {k: v for k, v in BASE.items() if k != 1}
    source = {k: v for k, v in BASE.items() if k != 2}
    got = merge_keyed(BASE, target, source)
    assert got.rows == {3: ("c", 30)} and got.changed == {2}


def test_different_cells_of_one_row_merge_cell_by_cell() -> None:
    got = merge_keyed(BASE, {**BASE, 1: ("A", 10)}, {**BASE, 1: ("a", 11)})
    assert got.conflicts == [] and got.rows[1] == ("A", 11)


def test_same_cell_different_values_is_a_conflict_naming_key_and_values() -> None:
    got = merge_keyed(BASE, {**BASE, 1: ("T", 10)}, {**BASE, 1: ("S", 10)})
    (conflict,) = got.conflicts
    assert (conflict.identity, conflict.reason, conflict.columns) == (1, UPDATE_UPDATE, (0,))
    assert (conflict.base, conflict.target, conflict.source) == (
        ("a", 10), ("T", 10), ("S", 10))
    assert got.rows[1] == ("T", 10) and got.changed == set()
    assert merge_keyed(BASE, {**BASE, 1: ("T", 10)}, {**BASE, 1: ("S", 11)},
                       "source-wins").rows[1] == ("S", 11)
    assert merge_keyed(BASE, {**BASE, 1: ("T", 10)}, {**BASE, 1: ("S", 11)},
                       "target-wins").rows[1] == ("T", 11)


def test_delete_against_update_is_a_conflict() -> None:
    target = {k: v for k, v in BASE.items() if k != 1}
    got = merge_keyed(BASE, target, {**BASE, 1: ("z", 10)})
    (conflict,) = got.conflicts
    assert conflict.reason == DELETE_UPDATE and conflict.target is None
    assert 1 not in got.rows
    assert merge_keyed(BASE, target, {**BASE, 1: ("z", 10)}, "source-wins").rows[1] == \
        ("z", 10)


def test_keyless_count_changed_differently_is_a_conflict() -> None:
    base = count_rows([("x",), ("x",)])
    got = merge_keyless(base, count_rows([("x",)]), count_rows([("x",)] * 3))
    (conflict,) = got.conflicts
    assert conflict.reason == COUNT_COUNT and conflict.counts == (2, 1, 3)
    same = merge_keyless(base, count_rows([("x",)]), count_rows([("x",)]))
    assert same.conflicts == [] and same.rows == {("x",): 1}


@pytest.mark.parametrize("value", ["source-wins", "SOURCE_WINS", " target-wins "])
def test_resolution_spellings(value: str) -> None:
    assert parse_resolution(value) in ("source-wins", "target-wins")


@pytest.mark.parametrize("value", ["theirs", "", 3])
def test_bad_resolution_is_invalid_input(value: object) -> None:
    with pytest.raises(InvalidInput, match="row_conflicts"):
        parse_resolution(value)
