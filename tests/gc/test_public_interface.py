"""gc reads a store only through the public `VersionStore` interface: the same run over the
SQL store and over the HTTP client (whose reads go through `/api/v1`) reports the same, and
the reflog protects history on both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.gc import GcReport, collect_garbage
from spark_lakeversion.model import RefType
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.versioning.http import RestVersionStore
from spark_lakeversion.wiring import open_store
from tests.gc.helpers import StoreLake


class ReadsOverHttp(RestVersionStore):
    """The HTTP client without its server-side gc: gc then runs here, over HTTP reads."""

    gc_on_server = None  # type: ignore[assignment]


def report_of(store: VersionStore, lake: StoreLake, now: datetime) -> dict[str, Any]:
    report: GcReport = collect_garbage(store, roots=lake.roots, older_than="1d", now=now,
                                       dry_run=True)
    data = report.to_dict()
    data.pop("seconds")
    return data


def report_over_http(url: str, lake: StoreLake, now: datetime) -> dict[str, Any]:
    """The dry run over a real server's `/api/v1`, read by a client that runs gc here."""
    with start_embedded_server(url, warehouse=str(lake.warehouse)) as server:
        client = ReadsOverHttp(server.url)
        try:
            return report_of(client, lake, now)
        finally:
            client.close()


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[tuple[StoreLake, str, dict[str, set[str]]]]:
    """main with tables a and b; b dropped on main (its location is then known only from
    the store's table states); dev moved back to main after an append (that head is
    reachable only through the reflog); a deleted branch's own append."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    lake = StoreLake(tmp_path, store)
    lake.create("main", "a", [1])
    before_b = lake.files()
    lake.create("main", "b", [2])
    b_files = lake.files() - before_b
    lake.drop("main", "b")
    store.create_ref("dev", RefType.BRANCH, "main")
    before = lake.files()
    lake.append("dev", "a", [3])
    reflog_only = lake.files() - before
    store.assign_ref("dev", "main")
    store.create_ref("gone", RefType.BRANCH, "main")
    before = lake.files()
    lake.append("gone", "a", [4])
    gone = lake.files() - before
    store.delete_ref("gone", force=True)
    lake.age()
    yield lake, url, {"dropped_table": b_files, "reflog_only": reflog_only, "gone": gone}
    store.close()


def test_gc_over_the_http_client_reports_what_it_reports_over_sql(
        lake: tuple[StoreLake, str, dict[str, set[str]]]) -> None:
    lake_, url, files = lake
    now = datetime.now(timezone.utc)
    over_sql = report_of(lake_.store, lake_, now)
    assert report_over_http(url, lake_, now) == over_sql
    # within the window: `dev#<time>` still reads its old head, `main~1` the dropped table
    assert {f["path"] for f in over_sql["files"]} == files["gone"]


def test_past_the_window_only_the_heads_are_kept(
        lake: tuple[StoreLake, str, dict[str, set[str]]]) -> None:
    lake_, url, files = lake
    later = datetime.now(timezone.utc) + timedelta(days=30)
    over_http = report_over_http(url, lake_, later)
    assert over_http == report_of(lake_.store, lake_, later)
    assert {f["path"] for f in over_http["files"]} == \
        files["dropped_table"] | files["gone"] | files["reflog_only"]
