"""Spark on lakeversion: a configured SparkSession in one call.

`session()` (or `configure(builder)`) wires Iceberg's runtime, our shim jar, the session
extensions and a `LakeVersionCatalog` named `lv` on a branch; without a server URL it starts
an embedded server (SQLite store, local warehouse) that lives as long as the session.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.runs import SERVER_ENV, env_branch, env_properties, env_server_url
from spark_lakeversion.spark.jars import (
    ICEBERG_MAVEN_COORDINATE,
    find_aws_sdk_jars,
    find_iceberg_runtime_jar,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ICEBERG_EXTENSION = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
SHIM_EXTENSION = "io.lakeversion.spark.LakeVersionSparkSessionExtensions"
CATALOG_CLASS = "io.lakeversion.spark.LakeVersionCatalog"
#: Spark settings under this prefix become commit properties (the shim strips the prefix)
PROPERTY_CONF_PREFIX = "spark.lakeversion.property."

__all__ = ["session", "configure", "spark_conf", "sql_name", "ICEBERG_EXTENSION",
           "SHIM_EXTENSION", "CATALOG_CLASS", "PROPERTY_CONF_PREFIX", "SERVER_ENV"]

def spark_conf(server_url: str, *, branch: str = "main", catalog: str = "lv",
               token: str | None = None, iceberg_jar: str | None = None,
               shim_jar: str | Path | None = None,
               properties: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every Spark setting lakeversion needs, as a plain dict (also used by spark-submit,
    and by the stock Airflow `SparkSubmitOperator` as its `conf`). `properties` are
    stamped on every commit the job makes (run ids, Airflow's dag/run/task ids)."""
    from spark_lakeversion.spark.build import ensure_shim_jar
    from spark_lakeversion.versioning.names import validate_ref_name

    validate_ref_name(branch)
    if not catalog or not catalog.replace("_", "").isalnum():
        raise InvalidInput(f"catalog name {catalog!r} must be letters, digits and _")
    iceberg = find_iceberg_runtime_jar(iceberg_jar)
    shim = Path(shim_jar) if shim_jar else ensure_shim_jar(iceberg)
    # the AWS SDK v2 (when installed) lets Iceberg's S3FileIO read and write s3:// tables
    aws = find_aws_sdk_jars()
    if aws and not _server_uses_s3(server_url, token):
        aws = []
    conf = {
        "spark.jars": ",".join(str(j) for j in (iceberg, shim, *aws) if j),
        "spark.sql.extensions": f"{ICEBERG_EXTENSION},{SHIM_EXTENSION}",
        f"spark.sql.catalog.{catalog}": CATALOG_CLASS,
        f"spark.sql.catalog.{catalog}.uri": server_url.rstrip("/"),
        f"spark.sql.catalog.{catalog}.ref": branch,
        # merges, rollbacks and other writers move refs under us: never serve stale tables
        f"spark.sql.catalog.{catalog}.cache-enabled": "false",
        # the server hands out its storage settings and credentials (S3 endpoint, keys):
        # Spark needs none of its own
        f"spark.sql.catalog.{catalog}.header.X-Iceberg-Access-Delegation": "vended-credentials",
        "spark.lakeversion.catalog": catalog,
        "spark.lakeversion.branch": branch,
    }
    if iceberg is None:
        conf["spark.jars.packages"] = ICEBERG_MAVEN_COORDINATE
    if token:
        conf[f"spark.sql.catalog.{catalog}.token"] = token
    for key, value in (properties or {}).items():
        if not key or "=" in key or any(c.isspace() for c in key) \
                or not isinstance(value, str):
            raise InvalidInput(f"commit property {key!r} needs a name without '=' or "
                               "spaces and a string value")
        conf[PROPERTY_CONF_PREFIX + key] = value
    return conf


def _server_uses_s3(server_url: str, token: str | None) -> bool:
    """Whether the server keeps tables on S3 (`GET /api/v1/config`): only then does Spark
    get the AWS SDK's jars (38 jars, ~23 MB, that every session otherwise loads: they came
    with S3 support, and with them session start grew; README, Benchmarks). Unknown (an
    older server, no answer in time): yes, as before."""
    import httpx

    from spark_lakeversion.preflight import PREFLIGHT_TIMEOUT_S

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.get(server_url.rstrip("/") + "/api/v1/config", headers=headers,
                           timeout=PREFLIGHT_TIMEOUT_S)
        schemes = answer.json()["storage_schemes"] if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        schemes = None
    return not isinstance(schemes, list) or "s3" in schemes


_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def sql_name(table: str | Sequence[str], ref: str, catalog: str = "lv") -> str:
    """Table `table` (``db.t`` or its parts) at `ref` as Spark SQL reads it, ready to paste:
    ``lv.`db@etl/run-1`.t``; the ref rides on the first namespace part, and any part
    that is not a plain identifier is backquoted (a backquote inside doubled)."""
    parts = table.split(".") if isinstance(table, str) else list(table)
    if len(parts) < 2:
        raise InvalidInput(f"{table!r} is not a namespace-qualified table name (db.t)")
    parts[0] = f"{parts[0]}@{ref}"
    return ".".join(p if _PLAIN_IDENTIFIER.fullmatch(p) else "`" + p.replace("`", "``") + "`"
                    for p in [catalog, *parts])


def _merge_list(existing: str | None, ours: str) -> str:
    items = [i for i in (existing or "").split(",") if i]
    items += [i for i in ours.split(",") if i and i not in items]
    return ",".join(items)


def configure(builder: Any, branch: str | None = None, server: str | None = None,
              store: str | None = None, warehouse: str | None = None, catalog: str = "lv",
              *, token: str | None = None, iceberg_jar: str | None = None,
              allowed_locations: Sequence[str] | None = None,
              io: Mapping[str, str] | None = None, **conf: Any) -> Any:
    """Add lakeversion to a user's `SparkSession.builder`; returns the builder.

    `branch` defaults to `$LAKEVERSION_BRANCH` (set by `lakeversion run`), else main; a
    run's id (`$LAKEVERSION_RUN_ID`) is stamped on the session's commits.
    Without `server` (or $LAKEVERSION_SERVER_URL) an embedded server is started on `store`
    and `warehouse` (plus `allowed_locations`: more roots tables may live under; `io`: the
    FileIO properties it opens them with, e.g. `{"s3.endpoint": ...}` for an s3://
    warehouse, default the standard `AWS_...` environment); it is stopped at interpreter
    exit. Spark gets the server's storage settings as vended credentials. Extra Spark
    settings go in `conf`, e.g. `configure(b, **{"spark.sql.shuffle.partitions": "4"})`.
    Existing `spark.jars` and `spark.sql.extensions` on the builder are kept.
    """
    url = server or env_server_url()
    if not url:
        from spark_lakeversion.server.embedded import start_embedded_server

        url = start_embedded_server(store, warehouse, token, allowed_locations=allowed_locations,
                                    io=io, stop_at_exit=True).url
    settings = spark_conf(url, branch=branch or env_branch(), catalog=catalog, token=token,
                          iceberg_jar=iceberg_jar, properties=env_properties())
    current: dict[str, str] = dict(getattr(builder, "_options", {}) or {})
    for key in ("spark.jars", "spark.sql.extensions", "spark.jars.packages"):
        if key in settings:
            settings[key] = _merge_list(current.get(key), settings[key])
    settings.update({k: str(v) for k, v in conf.items()})
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder


def session(branch: str | None = None, server: str | None = None, store: str | None = None,
            warehouse: str | None = None, catalog: str = "lv", *,
            allowed_locations: Sequence[str] | None = None,
            io: Mapping[str, str] | None = None, **conf: Any) -> SparkSession:
    """A SparkSession on `branch` (default `$LAKEVERSION_BRANCH`, else main) of lakeversion,
    with typed errors from the shim.

    Outside spark-submit it runs `local[*]` unless `conf` names a master. An embedded
    server started here stops when the session does (or at exit).
    """
    from pyspark.sql import SparkSession

    from spark_lakeversion.spark.jvm import install_error_translation

    builder = SparkSession.builder
    inside_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if not inside_submit and "spark.master" not in conf:
        builder = builder.master("local[*]")
    server = server or env_server_url()
    embedded = None
    if not server:
        from spark_lakeversion.server.embedded import start_embedded_server

        embedded = start_embedded_server(store, warehouse, allowed_locations=allowed_locations,
                                         io=io, stop_at_exit=True)
        server = embedded.url
    builder = configure(builder, branch=branch, server=server, catalog=catalog, **conf)
    spark = builder.getOrCreate()
    install_error_translation()
    if embedded is not None:
        _stop_server_with(spark, embedded)
    return spark


def _stop_server_with(spark: Any, server: Any) -> None:
    """Wrap `spark.stop()` so the embedded server goes down with the session."""
    original = spark.stop

    def stop() -> None:
        try:
            original()
        finally:
            server.stop()

    spark.stop = stop
