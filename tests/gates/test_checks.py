"""Checks run on the merge preview, and the publish is atomic with their verdict."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from spark_lakeversion.checks.python import CheckContext
from spark_lakeversion.errors import ChecksFailed
from spark_lakeversion.model import CheckKind, CheckSpec
from spark_lakeversion.versioning.http import RestVersionStore
from tests.gates import helpers
from tests.gates.helpers import Receiver
from tests.lake import ServerLake

UNIQUE_IDS = "SELECT id, count(*) AS n FROM db.t GROUP BY id HAVING count(*) > 1"
NOT_NULL_V = "SELECT id FROM db.t WHERE v IS NULL"
NO_ROW_LOST = ("SELECT p.n AS preview_rows, t.n AS target_rows FROM "
               "(SELECT count(*) AS n FROM db.t) p, (SELECT count(*) AS n FROM target.db.t) t "
               "WHERE p.n < t.n")


def add(lake: ServerLake, name: str, kind: CheckKind, spec: str, *, tables: tuple[str, ...] = (),
        timeout: float = 60.0, branch: str = "main") -> None:
    lake.store.add_check(CheckSpec(branch, name, kind, spec, tables, timeout))


def stored(lake: ServerLake, name: str, kind: CheckKind, spec: str) -> None:
    """A check written straight into the store, as one added before checks were validated
    when added: the engines refuse it again when it runs."""
    lake.store.storage.add_check(CheckSpec("main", name, kind, spec))


def dev_with(lake: ServerLake, ids: list[int], name: str = "dev") -> None:
    lake.store.create_ref(name)
    lake.append(name, "db.t", ids)


def refused(lake: ServerLake, source: str = "dev", **options: object) -> ChecksFailed:
    head, files = lake.head(), lake.metadata_files()
    with pytest.raises(ChecksFailed) as caught:
        lake.store.merge(source, "main", **options)
    assert lake.head() == head
    # the only new metadata files are the preview's own (a content merge writes them)
    preview = caught.value.preview
    assert preview is not None
    kept = {str(c.fields.get("metadata_location", "")).removeprefix("file://")
            for _, c in lake.store.list_keys(preview)}
    assert {str(f) for f in lake.metadata_files() - files} <= kept
    return caught.value


def test_sql_check_passes_and_published_commit_carries_summary(lake: ServerLake) -> None:
    add(lake, "unique_ids", CheckKind.SQL, UNIQUE_IDS)
    add(lake, "not_null_v", CheckKind.SQL, NOT_NULL_V)
    dev_with(lake, [4, 5])
    lake.append("main", "db.t", [6])  # not a fast-forward: a merge commit is published
    result = lake.store.merge("dev", "main")
    assert [(c["name"], c["status"]) for c in result.checks] == [
        ("not_null_v", "passed"), ("unique_ids", "passed")]
    assert result.new_head == lake.head()
    props = lake.store.get_commit(result.new_head).properties
    assert props["lakeversion.checks"] == "passed: not_null_v, unique_ids"
    preview = props["lakeversion.checks.preview"]
    assert result.preview == preview != result.new_head
    # the published commit holds exactly the checked tree
    assert lake.store.diff(preview, result.new_head) == []
    assert lake.ids("main") == [1, 2, 3, 4, 5, 6]


def test_sql_check_fails_with_sample_rows(lake: ServerLake) -> None:
    add(lake, "unique_ids", CheckKind.SQL, UNIQUE_IDS)
    dev_with(lake, [1, 2])
    failure = refused(lake)
    [report] = failure.reports
    assert report["status"] == "failed" and report["violations"] == 2
    assert sorted(s["id"] for s in report["samples"]) == [1, 2]
    assert all(s["n"] == 2 for s in report["samples"])
    assert report["duration_ms"] >= 0
    assert "unique_ids" in failure.message and "nothing was published" in failure.message
    # the preview stays readable: it holds the duplicates main never got
    assert failure.preview is not None
    assert lake.ids(failure.preview) == [1, 1, 2, 2, 3]
    assert lake.ids("main") == [1, 2, 3]


def test_samples_are_capped_at_ten(lake: ServerLake) -> None:
    add(lake, "every_row", CheckKind.SQL, "SELECT id FROM db.t")
    dev_with(lake, list(range(10, 30)))
    [report] = refused(lake).reports
    assert report["violations"] == 23 and len(report["samples"]) == 10


def test_sql_check_compares_with_target(lake: ServerLake) -> None:
    add(lake, "no_row_lost", CheckKind.SQL, NO_ROW_LOST)
    lake.store.create_ref("shrink")
    lake.catalog("shrink").load_table("db.t").delete("id = 1")
    [report] = refused(lake, "shrink").reports
    assert report["samples"] == [{"preview_rows": 2, "target_rows": 3}]
    dev_with(lake, [4])
    assert lake.store.merge("dev", "main").checks[0]["status"] == "passed"


def test_sql_check_reads_the_source(lake: ServerLake) -> None:
    # rows the source has that the merge result lost (a target-wins merge drops them)
    add(lake, "kept_source_rows", CheckKind.SQL,
        "SELECT id FROM source.db.t EXCEPT SELECT id FROM db.t")
    dev_with(lake, [4])
    lake.append("main", "db.t", [5])
    [report] = refused(lake, strategy="target-wins").reports
    assert report["samples"] == [{"id": 4}]
    assert lake.store.merge("dev", "main").checks[0]["status"] == "passed"
    assert lake.ids("main") == [1, 2, 3, 4, 5]


def test_scoped_check_is_skipped_when_its_tables_do_not_change(lake: ServerLake) -> None:
    lake.create("db.other", [1])
    add(lake, "always_fails", CheckKind.SQL, "SELECT 1 AS x", tables=("db.other",))
    dev_with(lake, [4])
    result = lake.store.merge("dev", "main")
    [report] = result.checks
    assert report["status"] == "skipped" and "db.other" in report["message"]
    assert lake.ids("main") == [1, 2, 3, 4]
    lake.store.create_ref("dev2")
    lake.append("dev2", "db.other", [2])
    assert refused(lake, "dev2").reports[0]["status"] == "failed"


def test_gate_sees_the_merged_result_not_the_source(lake: ServerLake) -> None:
    add(lake, "unique_ids", CheckKind.SQL, UNIQUE_IDS)
    dev_with(lake, [5])
    lake.append("main", "db.t", [5])  # each side alone stays unique
    assert lake.ids("dev") == [1, 2, 3, 5] and lake.ids("main") == [1, 2, 3, 5]
    [report] = refused(lake).reports
    assert report["samples"] == [{"id": 5, "n": 2}]


def test_bad_sql_is_refused_when_added_and_an_error_report_when_run(lake: ServerLake) -> None:
    from spark_lakeversion.errors import InvalidInput

    with pytest.raises(InvalidInput, match="syntax error"):
        add(lake, "typo", CheckKind.SQL, "SELEC nope")
    assert lake.store.list_checks("main") == []
    stored(lake, "typo", CheckKind.SQL, "SELEC nope")
    dev_with(lake, [4])
    [report] = refused(lake).reports
    assert report["status"] == "error" and "syntax" in report["message"].lower()
    assert "SELEC nope" in report["message"] and "__lakeversion" not in report["message"]


def test_sql_check_error_shows_the_users_sql_not_the_wrapper(lake: ServerLake) -> None:
    from spark_lakeversion.errors import InvalidInput

    cast = "SELECT CAST(v AS INTEGER) AS n FROM db.t"
    with pytest.raises(InvalidInput) as caught:  # it runs once on main as it is
        add(lake, "cast", CheckKind.SQL, cast)
    assert caught.value.message.startswith("check 'cast' does not run on 'main' as it is: "
                                           "Conversion Error")
    assert f"in: {cast}" in caught.value.message
    assert "__lakeversion" not in caught.value.message
    assert lake.store.list_checks("main") == []
    stored(lake, "cast", CheckKind.SQL, cast)
    dev_with(lake, [4])
    [report] = refused(lake).reports
    assert report["status"] == "error" and "Conversion Error" in report["message"]
    assert "in: SELECT CAST(v AS INTEGER) AS n FROM db.t" in report["message"]
    assert "__lakeversion" not in report["message"]


def test_sql_check_is_one_query(lake: ServerLake, tmp_path: object) -> None:
    from spark_lakeversion.errors import InvalidInput

    sneaky = "SELECT 1 AS x; CREATE TABLE t AS SELECT 1"
    with pytest.raises(InvalidInput, match="one query"):
        add(lake, "sneaky", CheckKind.SQL, sneaky)
    stored(lake, "sneaky", CheckKind.SQL, sneaky)
    dev_with(lake, [4])
    [report] = refused(lake).reports
    assert report["status"] == "error" and "one query" in report["message"]


def test_slow_sql_check_is_interrupted_at_its_timeout(lake: ServerLake) -> None:
    # hash() keeps DuckDB from proving the filter empty; too slow to be added (it runs once
    # when added), so stored as an older check would be
    lake.store.storage.add_check(CheckSpec(
        "main", "slow", CheckKind.SQL,
        "SELECT a.range AS x FROM range(100000000000) a WHERE hash(a.range) = 0", (), 1))
    dev_with(lake, [4])
    started = time.monotonic()
    [report] = refused(lake).reports
    assert time.monotonic() - started < 10
    assert report["status"] == "error" and "timed out after 1s" in report["message"]


def test_python_check_passes_and_fails(lake: ServerLake) -> None:
    add(lake, "small", CheckKind.PYTHON, "tests.gates.helpers:at_most_five_rows")
    add(lake, "scope", CheckKind.PYTHON, "tests.gates.helpers.changed_tables_named")
    dev_with(lake, [4, 5])
    result = lake.store.merge("dev", "main")
    assert {c["name"]: c["status"] for c in result.checks} == {"small": "passed",
                                                                "scope": "passed"}
    assert helpers.CALLS[-1] == result.preview
    lake.append("dev", "db.t", [6])
    reports = {r["name"]: r for r in refused(lake).reports}
    assert reports["small"]["status"] == "failed"
    assert reports["small"]["message"] == "6 rows on the preview"
    assert reports["small"]["violations"] == 1
    assert reports["scope"]["status"] == "passed"


def test_unknown_python_check_is_refused_or_an_error(lake: ServerLake) -> None:
    from spark_lakeversion.errors import InvalidInput

    with pytest.raises(InvalidInput):
        add(lake, "bad", CheckKind.PYTHON, "not a path")
    with pytest.raises(InvalidInput, match="has no function nope"):
        add(lake, "missing", CheckKind.PYTHON, "tests.gates.helpers:nope")
    stored(lake, "missing", CheckKind.PYTHON, "tests.gates.helpers:nope")
    dev_with(lake, [4])
    [report] = refused(lake).reports
    assert report["status"] == "error" and "has no function nope" in report["message"]


def test_webhook_check_passes_and_fails(lake: ServerLake, receiver: Receiver) -> None:
    add(lake, "hook", CheckKind.WEBHOOK, receiver.url)
    dev_with(lake, [4])
    lake.append("main", "db.t", [6])
    result = lake.store.merge("dev", "main")
    assert result.checks[0]["status"] == "passed"
    [body] = receiver.bodies
    assert body["check"] == "hook" and body["target"] == "main" and body["source"] == "dev"
    assert body["preview"] == result.preview
    assert [c["key"] for c in body["changes"]] == ["db.t"]
    # the receiver can read the preview through the catalog
    assert lake.ids(body["preview"]) == [1, 2, 3, 4, 6]
    receiver.status = 422
    receiver.answer = {"message": "orders look wrong", "violations": 3,
                       "samples": [{"id": 4}]}
    lake.append("dev", "db.t", [7])
    [report] = refused(lake).reports
    assert report == {**report, "status": "failed", "message": "orders look wrong",
                      "violations": 3, "samples": [{"id": 4}]}


def test_webhook_timeout_fails_the_merge(lake: ServerLake, receiver: Receiver) -> None:
    receiver.delay = 3.0
    add(lake, "slow", CheckKind.WEBHOOK, receiver.url, timeout=0.5)
    dev_with(lake, [4])
    started = time.monotonic()
    [report] = refused(lake).reports
    assert time.monotonic() - started < 2.5
    assert report["status"] == "error" and "timed out after 0.5s" in report["message"]


def test_webhook_redirect_is_not_followed(lake: ServerLake, receiver: Receiver) -> None:
    """`lake` allows 127.0.0.1 (`--webhook-allow 127.0.0.1`); a 302 fails the check."""
    elsewhere = Receiver().start()
    try:
        receiver.status, receiver.location = 302, elsewhere.url
        add(lake, "hook", CheckKind.WEBHOOK, receiver.url)
        dev_with(lake, [4])
        [report] = refused(lake).reports
        assert report["status"] == "failed" and report["message"] == "HTTP 302"
        assert len(receiver.hits) == 1 and elsewhere.hits == []
    finally:
        elsewhere.stop()


def test_target_moving_during_checks_replans_and_rechecks(lake: ServerLake) -> None:
    """A second merge lands while the first one's checks run: the first is planned and
    checked again, and main only ever holds checked states."""
    add(lake, "small", CheckKind.PYTHON, "tests.gates.helpers:at_most_five_rows")
    dev_with(lake, [4])
    dev_with(lake, [5], name="other")
    store = lake.store

    def second_merge(ctx: CheckContext) -> None:
        store.merge("other", "main")

    helpers.HOOKS["at_most_five_rows"] = second_merge
    helpers.CALLS.clear()
    result = store.merge("dev", "main")
    assert lake.ids("main") == [1, 2, 3, 4, 5]
    assert len(helpers.CALLS) == 3  # dev's first preview, other's, dev's second
    runs = store.check_runs("main")
    # the nested merge finishes (and records) first; every preview checked is recorded
    assert sorted(r.preview for r in runs) == sorted(helpers.CALLS)
    assert runs[0].preview == helpers.CALLS[-1]
    assert result.preview == helpers.CALLS[-1] != helpers.CALLS[0]
    checked_trees = {store.get_commit(p).root for p in helpers.CALLS}
    since = store.get_commit(helpers.CALLS[0]).timestamp
    moves = [e for e in store.reflog(since) if e.name == "main" and e.timestamp >= since]
    assert [e.operation for e in moves] == ["gated fast-forward", "gated merge"]
    for entry in moves:
        if entry.head is not None:
            assert store.get_commit(entry.head).root in checked_trees


def test_dry_run_runs_checks_and_publishes_nothing(lake: ServerLake) -> None:
    add(lake, "unique_ids", CheckKind.SQL, UNIQUE_IDS)
    dev_with(lake, [4])
    head = lake.head()
    result = lake.store.merge("dev", "main", dry_run=True)
    assert result.dry_run and result.new_head is None
    assert result.checks[0]["status"] == "passed"
    assert lake.head() == head
    lake.append("dev", "db.t", [1])
    failure = refused(lake, dry_run=True)
    assert "(dry run)" in failure.message


def test_check_runs_are_recorded_and_served(lake: ServerLake) -> None:
    add(lake, "unique_ids", CheckKind.SQL, UNIQUE_IDS)
    dev_with(lake, [1])
    failure = refused(lake)
    client = RestVersionStore(lake.server.url)
    try:
        [run] = client.check_runs("main")
        assert run.preview == failure.preview and run.source == "dev"
        assert run.report.status.value == "failed" and run.report.violations == 1
        assert client.list_checks("main")[0].spec == UNIQUE_IDS
        with pytest.raises(ChecksFailed) as caught:  # typed over HTTP, with its reports
            client.merge("dev", "main")
        assert caught.value.reports[0]["samples"] == [{"id": 1, "n": 2}]
        assert client.remove_check("main", "unique_ids") is True
        assert client.merge("dev", "main").checks == ()
    finally:
        client.close()
    with httpx.Client(base_url=lake.server.api_url) as http:
        answer = http.get("/check-runs", params={"branch": "main", "limit": 1})
        assert answer.status_code == 200
        assert answer.json()["runs"][0]["status"] == "failed"
        assert http.get("/check-runs", params={"limit": 0}).status_code == 400


def test_rest_merge_refusal_is_412_with_reports(lake: ServerLake) -> None:
    add(lake, "unique_ids", CheckKind.SQL, UNIQUE_IDS)
    dev_with(lake, [2])
    head = lake.head()
    with httpx.Client(base_url=lake.server.api_url, timeout=60) as http:
        answer = http.post("/merge", json={"source": "dev", "target": "main"})
    assert answer.status_code == 412
    error = answer.json()["error"]
    assert error["code"] == "CHECKS_FAILED"
    assert error["reports"][0]["samples"] == [{"id": 2, "n": 2}]
    assert lake.head() == head


@pytest.mark.parametrize("body", [
    {"branch": "main", "name": "x y", "kind": "sql", "spec": "SELECT 1"},
    {"branch": "main", "name": "x", "kind": "sql", "spec": "  "},
    {"branch": "main", "name": "x", "kind": "webhook", "spec": "ftp://host/x"},
    {"branch": "main", "name": "x", "kind": "sql", "spec": "SELECT 1", "timeout_s": 0},
    {"branch": "main", "name": "x", "kind": "sql", "spec": "SELECT 1", "tables": [""]},
    {"branch": "main", "name": "x", "kind": "shell", "spec": "rm -rf /"},
])
def test_bad_check_definitions_are_400_and_store_nothing(lake: ServerLake,
                                                         body: dict[str, object]) -> None:
    with httpx.Client(base_url=lake.server.api_url) as http:
        answer = http.post("/checks", json=body)
        assert answer.status_code == 400, answer.text
        assert http.get("/checks").json() == {"checks": []}


def test_duplicate_check_and_unknown_branch(lake: ServerLake) -> None:
    with httpx.Client(base_url=lake.server.api_url) as http:
        body = {"branch": "main", "name": "x", "kind": "sql", "spec": "SELECT 1"}
        assert http.post("/checks", json=body).status_code == 201
        assert http.post("/checks", json=body).status_code == 409
        assert http.post("/checks", json={**body, "branch": "nope"}).status_code == 404


def test_post_merge_notification_never_blocks(lake: ServerLake, receiver: Receiver) -> None:
    add(lake, "tell", CheckKind.NOTIFY, receiver.url)
    add(lake, "gone", CheckKind.NOTIFY, "http://127.0.0.1:9/unreachable", timeout=1)
    dev_with(lake, [4])
    result = lake.store.merge("dev", "main")
    assert lake.ids("main") == [1, 2, 3, 4]
    deadline = time.monotonic() + 20
    while len(lake.store.check_runs("main")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    runs = {r.report.name: r for r in lake.store.check_runs("main")}
    assert runs["tell"].kind == "notify" and runs["tell"].report.status.value == "passed"
    assert runs["gone"].report.status.value == "failed"
    assert receiver.bodies[0]["new_head"] == result.new_head
    assert receiver.bodies[0]["event"] == "merged"
    lake.append("main", "db.t", [5])  # a direct commit: post-commit notification
    deadline = time.monotonic() + 20
    while len(receiver.bodies) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    committed = receiver.bodies[1]
    assert committed["event"] == "committed" and committed["new_head"] == lake.head()
    assert [(c["key"], c["kind"]) for c in committed["changes"]] == [("db.t", "CHANGED")]


def test_gated_merge_keeps_the_servers_limits(tmp_path: Path) -> None:
    """The gate has no endpoint of its own any more: nothing rebuilds an app over the store
    and resets its limits (issue 20 item 7)."""
    from pyiceberg.exceptions import RESTError

    from spark_lakeversion.limits import Limits
    from spark_lakeversion.server.embedded import start_embedded_server

    limits = Limits(max_key_bytes=40)
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"), limits=limits) as server:
        lake = ServerLake(server, tmp_path / "wh")
        lake.create("db.t", [1])
        add(lake, "unique_ids", CheckKind.SQL, UNIQUE_IDS)
        dev_with(lake, [2])
        assert lake.store.merge("dev", "main").checks[0]["status"] == "passed"
        assert lake.store.limits == limits
        with pytest.raises(RESTError, match="60 bytes, over the limit of 40 bytes"):
            lake.catalog("main").create_namespace("n" * 60)
        assert ("n" * 60,) not in lake.catalog("main").list_namespaces()
