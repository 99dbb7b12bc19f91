"""Value limits and the Unicode rule hold at the store's commit entry, on every backend and
through the REST client: `TooLarge` / `InvalidInput`, and not a row written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import InvalidInput, InvalidRefExpression, TooLarge
from spark_lakeversion.limits import Limits
from spark_lakeversion.model import Put
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning.interface import decode_page_token, encode_page_token
from spark_lakeversion.wiring import open_store
from tests.store.helpers import snapshot_of_store
from tests.versioning.helpers import namespace, table

BIG = "x" * 5_000_000


def commit(store: VersionStore, **kwargs: Any) -> None:
    args: dict[str, Any] = {"message": "m", "operations": [Put(("db",), namespace())]}
    args.update(kwargs)
    store.commit("main", args.pop("operations"), **args)


@pytest.mark.parametrize("kwargs, limit", [
    ({"message": BIG}, "max-message-bytes"),
    ({"author": BIG}, "max-property-value-bytes"),
    ({"properties": {"k": BIG}}, "max-property-value-bytes"),
    ({"properties": {BIG[:1025]: "v"}}, "max-property-key-bytes"),
    ({"operations": [Put(("db", BIG), table("t", 1))]}, "max-key-bytes"),
    ({"operations": [Put(("db",), namespace({"k": BIG}))]}, "max-property-value-bytes"),
], ids=["message", "author", "property-value", "property-key", "key", "namespace-property"])
def test_oversized_values_are_refused_before_any_write(store: VersionStore,
                                                       kwargs: dict[str, Any],
                                                       limit: str) -> None:
    before = snapshot_of_store(store)
    with pytest.raises(TooLarge, match=f"over the limit of .*--{limit}"):
        commit(store, **kwargs)
    assert snapshot_of_store(store) == before


@pytest.mark.parametrize("kwargs", [
    {"message": "a\ud800"}, {"author": "\udfff"}, {"properties": {"k\ud800": "v"}},
    {"operations": [Put(("db", "t\udc80"), table("t", 1))]},
    {"operations": [Put(("db",), namespace({"k": "\ud800"}))]},
], ids=["message", "author", "property-key", "key", "namespace-property"])
def test_lone_surrogates_are_refused_before_any_write(store: VersionStore,
                                                      kwargs: dict[str, Any]) -> None:
    before = snapshot_of_store(store)
    with pytest.raises(InvalidInput, match="not valid Unicode") as caught:
        commit(store, **kwargs)
    assert not isinstance(caught.value, TooLarge)
    assert snapshot_of_store(store) == before


def test_merge_message_and_author_are_limited(store: VersionStore) -> None:
    store.create_ref("dev")
    store.commit("dev", [Put(("db",), namespace())], message="on dev")
    before = snapshot_of_store(store)
    with pytest.raises(TooLarge, match="commit message"):
        store.merge("dev", "main", message=BIG)
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        store.merge("dev", "main", author="\ud800")
    assert snapshot_of_store(store) == before


def test_a_stores_limits_are_configurable(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}",
                       limits=Limits(max_operations=2, max_message_bytes=10, max_key_bytes=8))
    before = snapshot_of_store(store)
    with pytest.raises(TooLarge, match="3 operations, over the limit of 2 operations"):
        commit(store, operations=[Put((f"n{i}",), namespace()) for i in range(3)])
    with pytest.raises(TooLarge, match="11 bytes, over the limit of 10"):
        commit(store, message="m" * 11)
    with pytest.raises(TooLarge, match="max-key-bytes"):
        commit(store, operations=[Put(("db", "abcdef"), table("t", 1))])  # 9 bytes with \0
    assert snapshot_of_store(store) == before
    commit(store, message="m" * 10, operations=[Put(("db", "abcde"), table("t", 1))])
    with pytest.raises(InvalidInput, match="max_operations must be a positive integer"):
        Limits(max_operations=0)
    with pytest.raises(AttributeError):  # fixed when opened: no later assignment
        store.limits = Limits()  # type: ignore[misc]
    assert store.limits.max_operations == 2


@pytest.mark.parametrize("expression", ["main~" + "9" * 5000, "main~1000001",
                                        "main#0001-01-01T00:00:00+14:00",
                                        "main#9999-12-31T23:59:59-12:00"])
def test_out_of_range_ref_expressions(store: VersionStore, expression: str) -> None:
    with pytest.raises(InvalidRefExpression):
        store.resolve(expression)


def test_page_tokens_round_trip_and_refuse_forgeries(store: VersionStore) -> None:
    assert decode_page_token(encode_page_token(0)) == 0
    assert decode_page_token(encode_page_token(12345)) == 12345
    for token in ["-5", "7", encode_page_token(3)[:-2], "", "\ud800", "€" * 10]:
        with pytest.raises(InvalidInput, match="^page_token "):
            store.log("main", page_token=token or "x")


@pytest.mark.parametrize("args", [
    ["log", "main~" + "9" * 5000],
    ["show", "main#0001-01-01T00:00:00+14:00"],
    ["diff", "main", "main#9999-12-31T23:59:59-12:00"],
    ["merge", "dev", "-m", "m" * 70_000],
    ["merge", "dev", "-m", "bad \udcff byte"],  # a non-UTF-8 argv byte, as Python sees it
], ids=["ancestors", "show-time", "diff-time", "merge-message", "merge-surrogate"])
def test_cli_bad_input_exits_1_never_4(tmp_path: Path, args: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    store.create_ref("dev")
    store.commit("dev", [Put(("db",), namespace())], message="on dev")
    before = snapshot_of_store(store)
    result = CliRunner().invoke(cli, ["--store", url, *args])
    assert result.exit_code == 1, result.output
    assert "error: " in result.output and "internal error" not in result.output
    assert snapshot_of_store(store) == before
