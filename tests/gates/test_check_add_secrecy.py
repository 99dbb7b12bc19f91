"""Adding a check tells nothing of a ref its principal cannot read.

A SQL check naming a table its branch lacks is accepted when another ref has it (a merge
will bring it) and refused otherwise. Only the refs the principal may read count: to `team`
(admin on `team-*`, no grant on `secret`) `db.secret_t`, which only `secret` holds, is as
missing as `db.nowhere_t`, which no ref holds; both answers are the same on every surface
(`/api/v1/checks`, `lakeversion check add`, the Python client, Spark's `ADD CHECK`), and
nothing is stored. `root` (admin on every ref) still gets a check for `secret`'s table.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

import spark_lakeversion as lv
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import InvalidInput
from tests.gates.helpers import TeamLake

#: a table only the unreadable `secret` has, and one no ref has
HIDDEN, NOWHERE = "secret_t", "nowhere_t"


def sql_of(table: str) -> str:
    return f"SELECT id FROM db.{table} WHERE id < 0"


def shown(text: str, table: str) -> str:
    """An answer with the table's name made neutral, to compare two answers (DuckDB's "Did
    you mean" picks among the branch's own relations by the name typed: it differs by name,
    not by what another ref holds)."""
    return re.sub(r'Did you mean \\?"[^"\\]*\\?"\?', "Did you mean ?",
                  text.replace(table, "<table>"))


def rest_add(site: TeamLake, who: str, table: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    answer = site.api(who).post("/checks", json={
        "branch": "team-1", "name": "c", "kind": "sql", "spec": sql_of(table), **extra})
    return answer.status_code, answer.json()


def cli_add(site: TeamLake, who: str, table: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--store", site.server.url, "--output", "json", "check",
                                      "add", "c", "--on", "team-1", "--sql", sql_of(table),
                                      *extra], env={"LAKEVERSION_TOKEN": site.tokens[who]})
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout


def test_rest_answers_alike_whether_an_unreadable_ref_has_the_table(
        team_lake: TeamLake) -> None:
    site = team_lake
    refs = site.refs()
    answers = {t: rest_add(site, "team", t) for t in (HIDDEN, NOWHERE)}
    for status, body in answers.values():
        assert status == 400 and body["error"]["code"] == "INVALID_INPUT"
        assert "which no ref has" in body["error"]["message"]
        assert "secret" not in body["error"]["message"].replace(HIDDEN, "")
    assert shown(json.dumps(answers[HIDDEN]), HIDDEN) == \
        shown(json.dumps(answers[NOWHERE]), NOWHERE)
    assert site.server.store.list_checks() == [] and site.refs() == refs
    # allow_missing accepts both alike: the table is still to come, as far as team knows
    for table in (HIDDEN, NOWHERE):
        status, body = rest_add(site, "team", table, allow_missing=True)
        assert status == 201 and body["spec"] == sql_of(table)
        assert site.api("team").post("/checks/delete", json={
            "branch": "team-1", "name": "c"}).json() == {"deleted": True}


def test_a_reader_of_the_ref_may_count_on_its_tables(team_lake: TeamLake) -> None:
    """`root` reads `secret`: its table is one a merge may bring, as before."""
    site = team_lake
    status, body = rest_add(site, "root", HIDDEN)
    assert status == 201 and body["spec"] == sql_of(HIDDEN)
    status, body = rest_add(site, "root", NOWHERE)
    assert status == 400 and "reads db.nowhere_t, which no ref has" in \
        body["error"]["message"]
    assert [c.spec for c in site.server.store.list_checks("team-1")] == [sql_of(HIDDEN)]


def test_cli_and_python_answer_alike(team_lake: TeamLake,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    site = team_lake
    outs = {t: cli_add(site, "team", t) for t in (HIDDEN, NOWHERE)}
    assert {code for code, _ in outs.values()} == {1}
    errors = {t: json.loads(out)["error"] for t, (_, out) in outs.items()}
    assert errors[HIDDEN]["code"] == "INVALID_INPUT"
    assert "which no ref has" in errors[HIDDEN]["message"]
    assert shown(json.dumps(errors[HIDDEN]), HIDDEN) == \
        shown(json.dumps(errors[NOWHERE]), NOWHERE)
    messages = {}
    monkeypatch.setenv("LAKEVERSION_TOKEN", site.tokens["team"])
    with lv.connect(site.server.url) as catalog:
        for table in (HIDDEN, NOWHERE):
            with pytest.raises(InvalidInput) as caught:
                catalog.branch("team-1").add_check("c", sql=sql_of(table))
            messages[table] = shown(caught.value.message, table)
    assert messages[HIDDEN] == messages[NOWHERE]
    assert site.server.store.list_checks() == []
    code, out = cli_add(site, "team", HIDDEN, "--allow-missing")
    assert code == 0 and json.loads(out)["spec"] == sql_of(HIDDEN)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_add_check_answers_alike(spark: Any, team_lake: TeamLake) -> None:
    from tests.spark.helpers import register_catalog

    site = team_lake
    name = f"lv_team_{uuid.uuid4().hex[:6]}"
    register_catalog(spark, name, site.server.url, token=site.tokens["team"], ref="team-1")
    messages = {}
    try:
        for table in (HIDDEN, NOWHERE):
            with pytest.raises(InvalidInput) as caught:
                spark.sql(f"ADD CHECK c ON BRANCH `team-1` AS '{sql_of(table)}'").collect()
            messages[table] = shown(caught.value.message, table)
    finally:
        spark.conf.unset("spark.lakeversion.catalog")
    assert "which no ref has" in messages[HIDDEN]
    assert messages[HIDDEN] == messages[NOWHERE]
    assert site.server.store.list_checks() == []
