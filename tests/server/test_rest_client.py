"""`connect("http://...")`: the Python API over a server, with its bearer token."""

from __future__ import annotations

from pathlib import Path

import pytest

import spark_lakeversion
from spark_lakeversion.errors import InvalidInput, RefNotFound
from spark_lakeversion.server.embedded import start_embedded_server


def test_connect_over_http_with_token_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_embedded_server(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "wh"),
                               token="sekrit") as server:
        monkeypatch.delenv("LAKEVERSION_TOKEN", raising=False)
        with pytest.raises(InvalidInput, match="unauthorized"):
            spark_lakeversion.connect(server.url).branches()
        assert [r.name for r in server.store.list_refs()] == ["main"]
        monkeypatch.setenv("LAKEVERSION_TOKEN", "sekrit")
        catalog = spark_lakeversion.connect(server.url)
        catalog.branch("dev").create()
        assert sorted(b.name for b in catalog.branches()) == ["dev", "main"]
        assert [r.name for r in server.store.list_refs()] == ["dev", "main"]
        with pytest.raises(RefNotFound):
            catalog.ref("nope").head  # noqa: B018 - the lookup is the point
