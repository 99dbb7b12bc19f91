""""Did you mean" on misspelled refs and tables, on every surface, never naming a ref the
principal cannot read (`versioning/suggest.py`)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.exceptions import NoSuchTableError

from spark_lakeversion.api import connect
from spark_lakeversion.auth.grants import Grant, Permission, Principal
from spark_lakeversion.errors import KeyNotFound, RefNotFound
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning.access import AccessControlledStore
from spark_lakeversion.versioning.suggest import closest
from spark_lakeversion.wiring import open_store
from tests.cli.helpers import run


def test_closest_needs_a_real_likeness() -> None:
    assert closest("mian", ["main", "dev"]) == "main"
    assert closest("devlop", ["develop", "main"]) == "develop"
    assert closest("zzz", ["main", "dev"]) is None
    assert closest("main", ["main"]) is None  # never the name itself


def test_store_errors_suggest_the_closest_ref(store: VersionStore) -> None:
    store.create_ref("develop")
    with pytest.raises(RefNotFound, match=r"named 'devlop' \(did you mean 'develop'\?\)"):
        store.resolve("devlop")
    with pytest.raises(RefNotFound, match=r"named 'mian' \(did you mean 'main'\?\)"):
        store.get_ref("mian")
    with pytest.raises(RefNotFound) as far:
        store.resolve("qqqqqq")
    assert "did you mean" not in far.value.message


def test_a_hint_never_names_a_ref_the_principal_cannot_read(tmp_path: Path) -> None:
    db = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    for name in ("etl-daily", "secret-dayly"):
        db.create_ref(name)
    etl = Principal("etl", (Grant("etl-*", frozenset({Permission.READ})),
                            Grant("secret-*x", frozenset({Permission.READ}))))
    seen = AccessControlledStore(db, etl)
    with pytest.raises(RefNotFound, match=r"\(did you mean 'etl-daily'\?\)"):
        seen.resolve("etl-dialy")
    # readable by its glob, but absent: the closest ref overall is one etl may not read
    with pytest.raises(RefNotFound) as hidden:
        seen.log("secret-daylyx")
    assert "secret-dayly'" not in hidden.value.message  # only a readable ref is named
    assert hidden.value.message.endswith("(did you mean 'etl-daily'?)")
    admin = AccessControlledStore(db, Principal("admin", unrestricted=True))
    with pytest.raises(RefNotFound, match=r"did you mean 'secret-dayly'"):
        admin.log("secret-daylyx")
    db.close()


def test_every_surface_suggests(tmp_path: Path) -> None:
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh")) as server:
        server.store.create_ref("develop")
        # CLI over HTTP: one line, the hint in it
        refused = run(server.url, "log", "devlop", code=2)  # NOT_FOUND
        assert "did you mean 'develop'?" in refused.stderr
        # Python over HTTP: the typed error carries the server's hint
        catalog = connect(server.url, warehouse=str(tmp_path / "wh"))
        with pytest.raises(RefNotFound, match="did you mean 'develop'"):
            catalog.ref("devlop").resolve()
        # Iceberg REST: a misspelled table, hinted from its namespace at that ref
        iceberg = RestCatalog("lv", uri=server.iceberg_uri)
        iceberg.create_namespace("db")
        iceberg.create_table("db.orders", schema=pa.schema([("id", pa.int64())]))
        with pytest.raises(NoSuchTableError, match=r"db.ordres. Ref: main. \(did you mean "
                                                    r"'db.orders'\?\)"):
            iceberg.load_table("db.ordres")
        # Python: tables of any format
        with pytest.raises(KeyNotFound, match=r"did you mean 'db.orders'\?"):
            catalog.ref("main").table("db.order")
        catalog.close()
