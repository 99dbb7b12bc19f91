"""Spark with the catalog's `token` property against a server with principals: reads,
writes, branch SQL and merges are checked per principal; refusals are `Forbidden`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.errors import Forbidden
from spark_lakeversion.server.embedded import start_embedded_server
from tests.server.access_helpers import write_auth_config
from tests.spark.helpers import register_catalog

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_spark_sql_per_principal(spark: Any, tmp_path: Path) -> None:
    tokens = write_auth_config(tmp_path / "auth.toml")
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "auth.toml")) as srv:
        names = {who: f"lv_{who}_{uuid.uuid4().hex[:6]}" for who in tokens}

        def sql(who: str, text: str) -> list[Any]:
            register_catalog(spark, names[who], srv.url, token=tokens[who])
            rows: list[Any] = spark.sql(text.replace("{lv}", names[who])).collect()
            return rows

        def refs() -> list[tuple[str, str]]:
            return [(r.name, r.head) for r in srv.store.list_refs()]

        try:
            sql("admin", "CREATE NAMESPACE {lv}.db")
            sql("admin", "CREATE TABLE {lv}.db.t (id INT) USING iceberg")
            sql("admin", "INSERT INTO {lv}.db.t VALUES (1)")
            assert [r[0] for r in sql("etl", "SELECT id FROM {lv}.db.t")] == [1]

            before = refs()
            with pytest.raises(Forbidden, match="principal 'etl' lacks 'write' on ref 'main'"):
                sql("etl", "INSERT INTO {lv}.db.t VALUES (2)")
            with pytest.raises(Forbidden, match="principal 'etl' lacks 'create' on ref 'dev'"):
                sql("etl", "CREATE BRANCH dev")
            with pytest.raises(Forbidden, match="principal 'analyst' lacks 'write'"):
                sql("analyst", "INSERT INTO {lv}.db.t VALUES (3)")
            with pytest.raises(Forbidden, match="principal 'analyst' lacks 'merge'"):
                sql("analyst", "MERGE BRANCH main INTO main")
            assert refs() == before

            sql("etl", "CREATE BRANCH `etl-s`")
            sql("etl", "INSERT INTO {lv}.`db@etl-s`.t VALUES (4)")
            sql("etl", "MERGE BRANCH `etl-s` INTO main")
            assert sorted(r[0] for r in sql("analyst", "SELECT id FROM {lv}.db.t")) == [1, 4]
            assert srv.store.log("etl-s").commits[0].author == "etl"

            with pytest.raises(Forbidden, match="principal 'nobody' lacks 'read'"):
                sql("nobody", "SELECT id FROM {lv}.db.t")
        finally:
            spark.conf.unset("spark.lakeversion.catalog")
