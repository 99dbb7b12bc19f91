"""`lakeversion bench rest --auth`: its config has 100 principals x 10 grants and the loop
runs through both servers (the figures themselves live in README, not in tests)."""

from __future__ import annotations

from pathlib import Path

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.auth.grants import Permission
from spark_lakeversion.bench.rest import (
    AUTH_GRANTS_EACH,
    AUTH_PRINCIPALS,
    run_auth,
    sample_auth_config,
)


def test_sample_config_is_100_principals_by_10_grants(tmp_path: Path) -> None:
    text, token = sample_auth_config()
    (tmp_path / "auth.toml").write_text(text)
    config = load_auth_config(tmp_path / "auth.toml")
    assert len(config.principals) == AUTH_PRINCIPALS
    assert {len(p.grants) for p in config.principals} == {AUTH_GRANTS_EACH}
    who = config.authenticate(token)
    assert who is not None and who.name == f"p{AUTH_PRINCIPALS - 1}"
    assert who.may(Permission.WRITE, "main") and not who.may(Permission.CREATE, "main")
    assert [g.matches("main") for g in who.grants] == [False] * 9 + [True]


def test_auth_bench_runs_both_loops() -> None:
    figures = run_auth(appends=4, rows=10, rounds=2, warmup=1)
    assert figures["appends"] == 4 and figures["principals"] == 100
    assert figures["auth_ms_per_append"] > 0 and figures["no_auth_ms_per_append"] > 0
    assert figures["meets_target"] == (figures["ratio"] <= 1.05)
