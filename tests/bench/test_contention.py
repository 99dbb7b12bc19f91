"""`lakeversion bench contention` end to end at a small size: its JSON shape, and no
acknowledged append lost in any scenario (2 servers on one PostgreSQL included)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from spark_lakeversion.cli.main import cli
from tests.helpers import require_postgres

LAYOUT_KEYS = {"appends", "appends_per_s", "p50_ms", "p99_ms", "retries_per_append",
               "gave_up", "errors", "cpu"}
CPU_KEYS = {"client_ms_per_append", "server_ms_per_append", "cores_used"}


def test_bench_contention_runs_small() -> None:
    require_postgres()
    result = CliRunner().invoke(cli, [
        "bench", "contention", "--json", "--duration", "2", "--rounds", "1", "--writers", "3",
        "--scenarios", "rebase,no_rebase,postgres"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["lost"] == 0 and figures["duplicates"] == 0
    assert isinstance(figures["ratio"], float) and figures["ratio"] > 0
    assert figures["meets_target"] == (figures["ratio"] >= figures["target_ratio"])
    for name, servers, rebase in (("rebase", 1, True), ("no_rebase", 1, False),
                                  ("postgres", 2, True)):
        scenario = figures[name]
        assert (scenario["servers"], scenario["rebase"], scenario["lost"]) == \
            (servers, rebase, 0)
        for layout in ("one_table", "own_tables"):
            assert set(scenario[layout]) == LAYOUT_KEYS
            assert scenario[layout]["appends"] > 0
            # where the CPU went: the writers' and the servers' own, per acknowledged append
            cpu = scenario[layout]["cpu"]
            assert set(cpu) == CPU_KEYS
            assert cpu["client_ms_per_append"] > 0 and cpu["server_ms_per_append"] > 0
            assert cpu["cores_used"] > 0
    # with the rebase on, a stale append is never refused: nobody retried or gave up
    assert figures["rebase"]["one_table"]["retries_per_append"] == 0.0


def test_bench_contention_refuses_an_unknown_scenario() -> None:
    result = CliRunner().invoke(cli, ["bench", "contention", "--scenarios", "nope"])
    assert result.exit_code == 1 and "unknown scenario" in result.output
