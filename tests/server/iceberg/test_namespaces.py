"""Namespaces as Iceberg's reference (JDBC) catalog has them, and its error wording: a
namespace exists if it was created or if anything is stored under it; listings show such
implicit parents; a namespace with anything under it is never dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
)

from spark_lakeversion.server.embedded import EmbeddedServer
from tests.lake import ID_ARROW
from tests.server.helpers import iceberg_error


def test_implicit_parents_exist_and_are_listed(server: EmbeddedServer,
                                               rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace(("a", "b", "c"))  # without its parents
    assert cat.list_namespaces() == [("a",)]
    assert cat.list_namespaces("a") == [("a", "b")]
    assert cat.list_namespaces(("a", "b")) == [("a", "b", "c")]
    assert cat.namespace_exists("a") and cat.namespace_exists(("a", "b"))
    assert cat.load_namespace_properties("a") == {}
    # a table under an implicit namespace makes its parents exist too
    cat.create_table(("a", "b", "t"), schema=ID_ARROW)
    cat.create_table(("a", "b", "c", "u"), schema=ID_ARROW)
    assert cat.list_namespaces(("a", "b")) == [("a", "b", "c")]
    assert cat.list_tables(("a", "b")) == [("a", "b", "t")]
    # creating a namespace that exists implicitly is refused, as in the reference catalog
    with pytest.raises(NamespaceAlreadyExistsError, match="Namespace already exists: a"):
        cat.create_namespace("a")
    # setting properties of an implicit namespace stores it
    cat.update_namespace_properties("a", updates={"owner": "ann"})
    assert cat.load_namespace_properties("a") == {"owner": "ann"}
    assert cat.list_namespaces() == [("a",)]


def test_children_of_an_implicit_parent_are_listed(server: EmbeddedServer,
                                                   rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace(("db_", "ns1", "ns2"))
    assert cat.list_namespaces(("db_", "ns1")) == [("db_", "ns1", "ns2")]
    assert cat.list_tables(("db_", "ns1")) == []
    with pytest.raises(NoSuchNamespaceError, match="Namespace does not exist: nope"):
        cat.list_namespaces("nope")


def test_underscore_is_matched_literally(server: EmbeddedServer,
                                         rest_catalog: Callable[..., Any]) -> None:
    """`_` and `%` are SQL LIKE wildcards in the reference catalog's queries; here names
    are matched exactly (`%` is refused in new names, `_` is a plain character)."""
    cat = rest_catalog(server)
    cat.create_namespace(("d_b", "x"))
    cat.create_namespace(("dab", "y"))
    cat.create_namespace(("d_bc", "z"))
    assert cat.list_namespaces("d_b") == [("d_b", "x")]
    assert cat.namespace_exists("d_b") and not cat.namespace_exists("d__")
    assert not cat.namespace_exists("d%")
    assert cat.list_namespaces() == [("d_b",), ("d_bc",), ("dab",)]


def test_a_namespace_with_children_is_never_dropped(server: EmbeddedServer,
                                                    rest_catalog: Callable[..., Any]) -> None:
    cat = rest_catalog(server)
    cat.create_namespace("db")
    cat.create_namespace(("db", "sub"))
    with pytest.raises(NamespaceNotEmptyError,
                       match=r"Namespace db is not empty\. 1 namespace\(s\) exist\. Ref: main\.$"):
        cat.drop_namespace("db")
    cat.create_table(("db", "t"), schema=ID_ARROW)
    with pytest.raises(NamespaceNotEmptyError,
                       match=r"Namespace db is not empty\. 1 table\(s\) and 1 namespace"):
        cat.drop_namespace("db")
    # an implicit namespace always has children: never dropped
    cat.create_namespace(("p", "q"))
    with pytest.raises(NamespaceNotEmptyError, match="Namespace p is not empty"):
        cat.drop_namespace("p")
    assert cat.namespace_exists("p") and cat.namespace_exists("db")
    cat.drop_table(("db", "t"))
    cat.drop_namespace(("db", "sub"))
    cat.drop_namespace("db")
    assert not cat.namespace_exists("db")
    with pytest.raises(NoSuchNamespaceError):
        cat.drop_namespace("db")


def test_error_texts_follow_the_reference_catalog(server: EmbeddedServer) -> None:
    ice = httpx.Client(base_url=server.iceberg_uri + "/v1/main")
    assert ice.post("/namespaces", json={"namespace": ["db"]}).status_code == 200
    message = iceberg_error(ice.get("/namespaces/db/tables/t"), 404, "NoSuchTableException")
    assert message == "Table does not exist: db.t. Ref: main."
    message = iceberg_error(ice.get("/namespaces/nope"), 404, "NoSuchNamespaceException")
    assert message == "Namespace does not exist: nope. Ref: main."
    message = iceberg_error(ice.get("/namespaces/nope/tables"), 404, "NoSuchNamespaceException")
    assert message == "Namespace does not exist: nope. Ref: main."
    schema = {"type": "struct", "schema-id": 0,
              "fields": [{"id": 1, "name": "id", "type": "long", "required": False}]}
    assert ice.post("/namespaces/db/tables", json={"name": "t", "schema": schema}
                    ).status_code == 200
    message = iceberg_error(ice.post("/namespaces/db/tables", json={"name": "t",
                                                                     "schema": schema}),
                            409, "AlreadyExistsException")
    assert message == "Table already exists: db.t. Ref: main."
    message = iceberg_error(ice.delete("/namespaces/db"), 409, "NamespaceNotEmptyException")
    assert message == "Namespace db is not empty. 1 table(s) exist. Ref: main."
    message = iceberg_error(ice.post("/namespaces", json={"namespace": ["db"]}), 409,
                            "AlreadyExistsException")
    assert message == "Namespace already exists: db. Ref: main."
    # `db@ref` names its ref in the same separate sentence
    assert httpx.post(server.api_url + "/refs", json={"name": "dev"}).status_code == 201
    message = iceberg_error(ice.get("/namespaces/db@dev/tables/u"), 404, "NoSuchTableException")
    # ...and a likely name after it ("did you mean", versioning/suggest.py)
    assert message == "Table does not exist: db.u. Ref: dev. (did you mean 'db.t'?)"
