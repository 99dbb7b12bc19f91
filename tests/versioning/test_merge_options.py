"""`MergeOptions`: one value, parsed once, the same from Python keywords and JSON bodies."""

from __future__ import annotations

import pytest

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.model import STRATEGY_NAMES, Key, MergeBehavior
from spark_lakeversion.versioning import MergeOptions


def test_keywords_and_json_give_the_same_value() -> None:
    from_keywords = MergeOptions.of(
        default_behavior="source-wins", behaviors={"db.t": "target_wins"},
        options={"isolation_level": "snapshot"}, fast_forward=False, dry_run=True,
        message="m", author="alice", properties={"job": "etl"},
        expected_target_head="0123abcd")
    assert from_keywords == MergeOptions(
        strategy=MergeBehavior.FORCE, behaviors={Key.of("db.t"): MergeBehavior.DROP},
        isolation_level="snapshot", fast_forward=False, dry_run=True, message="m",
        author="alice", properties={"job": "etl"}, expected_head="0123abcd")
    assert from_keywords.to_dict() == {
        "dry_run": True, "fast_forward": False, "strategy": "source-wins",
        "behaviors": {"db.t": "target-wins"}, "message": "m", "author": "alice",
        "properties": {"job": "etl"}, "options": {"isolation_level": "snapshot"},
        "expected_target_head": "0123abcd"}
    assert MergeOptions.from_dict(from_keywords.to_dict()) == from_keywords


@pytest.mark.parametrize(("spellings", "behavior"), [
    (("normal", "NORMAL", "Normal"), MergeBehavior.NORMAL),
    (("source-wins", "source_wins", "SOURCE_WINS", "FORCE", "force"), MergeBehavior.FORCE),
    (("target-wins", "Target_Wins", "DROP", "drop"), MergeBehavior.DROP),
])
def test_strategies_and_behaviors_accept_both_spellings_in_any_case(
        spellings: tuple[str, ...], behavior: MergeBehavior) -> None:
    """A body may say `source-wins` (documented) or `FORCE` (older clients), in any case,
    for the default strategy and per table alike; the client sends strategy names only."""
    for spelling in spellings:
        options = MergeOptions.from_dict({"strategy": spelling, "behaviors": {"db.t": spelling}})
        assert (options.strategy, options.behaviors) == (behavior, {Key.of("db.t"): behavior})
        assert options.to_dict()["behaviors"] == {"db.t": STRATEGY_NAMES[behavior]}
        assert options.to_dict()["strategy"] == STRATEGY_NAMES[behavior]


def test_defaults() -> None:
    options = MergeOptions.from_dict({})
    assert options == MergeOptions()
    assert (options.strategy, options.fast_forward, options.dry_run) == (
        MergeBehavior.NORMAL, True, False)
    assert options.merger_options() == {}


@pytest.mark.parametrize(("body", "message"), [
    ({"strategy": "sideways"}, "unknown merge strategy 'sideways'"),
    ({"behaviors": {"db.t": "maybe"}}, "unknown merge strategy 'maybe'"),
    ({"behaviors": {"": "FORCE"}}, "non-empty table keys"),
    ({"behaviors": ["db.t"]}, "behaviors must map"),
    ({"options": "snapshot"}, "options must be an object"),
    ({"message": 3}, "message must be a string"),
])
def test_bad_options_are_refused(body: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        MergeOptions.from_dict(body)


def test_unknown_keywords_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown merge option.*sideways"):
        MergeOptions.of(sideways=True)


def test_row_conflicts_travel_from_keywords_and_json_to_the_mergers() -> None:
    options = MergeOptions.of(row_conflicts="SOURCE_WINS", isolation_level="snapshot")
    assert options.row_conflicts == "source-wins"
    assert options.to_dict()["row_conflicts"] == "source-wins"
    assert MergeOptions.from_dict(options.to_dict()) == options
    assert options.merger_options() == {"isolation_level": "snapshot",
                                        "row_conflicts": "source-wins"}
    assert "row_conflicts" not in MergeOptions().to_dict()


@pytest.mark.parametrize("value", ["theirs", "", 1, ["source-wins"]])
def test_a_bad_row_conflicts_is_invalid_input(value: object) -> None:
    with pytest.raises(InvalidInput, match="row_conflicts"):
        MergeOptions.from_dict({"row_conflicts": value})
