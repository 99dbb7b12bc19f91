"""`LakeVersionHook`: the ``lakeversion`` connection (server URL and token) as a catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseHook

from spark_lakeversion.airflow import CONN_TYPE, DEFAULT_CONN_ID
from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import InvalidInput


class LakeVersionHook(BaseHook):
    """Talks to a ``lakeversion serve`` server over HTTP.

    The connection's *host* is the server URL (``http://host:port``; a bare host name is
    completed with *port* and ``http``), its *password* the bearer token, if the server
    checks one.
    """

    conn_name_attr = "lakeversion_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "LakeVersion"

    def __init__(self, lakeversion_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lakeversion_conn_id = lakeversion_conn_id
        self._catalog: Catalog | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {"hidden_fields": ["schema", "login", "extra"],
                "relabeling": {"host": "Server URL", "password": "Token"},
                "placeholders": {"host": "http://lakeversion:8181"}}

    def connection_settings(self) -> tuple[str, str | None]:
        """The server's base URL and the token (None without one)."""
        conn = self.get_connection(self.lakeversion_conn_id)
        host = (conn.host or "").strip()
        if not host:
            raise InvalidInput(f"connection {self.lakeversion_conn_id!r} has no host: set it "
                               "to the lakeversion server URL, e.g. http://host:8181")
        if "://" not in host:
            host = f"http://{host}" + (f":{conn.port}" if conn.port else "")
        if not host.startswith(("http://", "https://")):
            raise InvalidInput(f"connection {self.lakeversion_conn_id!r}: the server URL "
                               f"must be http(s)://, not {host!r}")
        return host.rstrip("/"), conn.password or None

    @property
    def server_url(self) -> str:
        return self.connection_settings()[0]

    def get_conn(self) -> Catalog:
        """A catalog over the server (one per hook, closed with `close`)."""
        if self._catalog is None:
            from spark_lakeversion.versioning.http import RestVersionStore

            url, token = self.connection_settings()
            self._catalog = Catalog(RestVersionStore(url, token=token), author="airflow")
        return self._catalog

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def spark_conf(self, branch: str, *, catalog: str = "lv",
                   properties: Mapping[str, str] | None = None) -> dict[str, str]:
        """Spark settings for a job on `branch` of this server: pass them as the stock
        ``SparkSubmitOperator(conf=hook.spark_conf("etl"))`` (or use
        `LakeVersionSparkSubmitOperator`, which adds the Airflow ids as commit properties)."""
        from spark_lakeversion.spark import spark_conf

        url, token = self.connection_settings()
        return spark_conf(url, branch=branch, catalog=catalog, token=token,
                          properties=properties)

    def test_connection(self) -> tuple[bool, str]:
        try:
            head = self.get_conn().branch("main").head
        except Exception as exc:  # the UI shows the message
            return False, str(exc)
        finally:
            self.close()
        return True, f"main is at {head.id[:12]}"
