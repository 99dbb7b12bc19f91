"""`lakeversion serve` authentication options, `lakeversion token new`, and a real
`lakeversion serve --auth-config` subprocess whose whole output is grepped for tokens."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from spark_lakeversion.auth import token_sha256
from spark_lakeversion.auth.grants import Permission
from spark_lakeversion.cli.main import cli
from spark_lakeversion.server.embedded import serve_in_subprocess
from tests.server.access_helpers import write_auth_config


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`serve(*args, env=...)`: run `lakeversion serve` up to uvicorn.run (not started)."""
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.delenv("LAKEVERSION_TOKEN", raising=False)

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[Result, dict[str, Any]]:
        seen.clear()
        result = CliRunner().invoke(cli, ["serve", "--store", f"sqlite:///{tmp_path / 's.db'}",
                                          "--warehouse", str(tmp_path / "wh"), *args], env=env)
        return result, dict(seen)

    return run


def auth_of(seen: dict[str, Any]) -> Any:
    return seen["app"].state.ctx.auth


def test_empty_tokens_are_errors_never_no_auth(serve: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for args, env in ((("--token", ""), None), (("--token", "  "), None),
                      ((), {"LAKEVERSION_TOKEN": ""}),
                      (("--token-file", str(empty)), None)):
        result, seen = serve(*args, env=env)
        assert result.exit_code != 0 and not seen, (args, env)
        assert "empty" in result.output


def test_token_sources(serve: Any, tmp_path: Path) -> None:
    secret = "tok-" + "x" * 40
    path = tmp_path / "token"
    path.write_text(secret + "\n")
    for args, env in ((("--token-file", str(path)), None),
                      ((), {"LAKEVERSION_TOKEN": secret}),
                      (("--token", secret), None)):
        result, seen = serve(*args, env=env)
        assert result.exit_code == 0, result.output
        who = auth_of(seen).authenticate(secret)
        assert who is not None and who.may_everywhere(Permission.ADMIN)
        assert secret not in result.output
        assert ("visible to every local user" in result.output) == ("--token" in args)
    config = tmp_path / "auth.toml"
    tokens = write_auth_config(config)
    result, seen = serve("--auth-config", str(config))
    assert result.exit_code == 0 and "4 principal(s)" in result.output
    assert auth_of(seen).authenticate(tokens["etl"]).name == "etl"
    result, seen = serve("--auth-config", str(config), "--token-file", str(path))
    assert result.exit_code != 0 and "give one of" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[[principal]]\nname = 'x'\n")
    result, seen = serve("--auth-config", str(bad))
    assert result.exit_code != 0 and "token_sha256" in result.output and not seen


def test_non_loopback_without_auth_needs_insecure(serve: Any, tmp_path: Path) -> None:
    result, seen = serve("--host", "0.0.0.0")
    assert result.exit_code != 0 and not seen
    assert "not a loopback address" in result.output and "--insecure" in result.output
    for args in (("--host", "0.0.0.0", "--insecure"), ("--host", "127.0.0.1"),
                 ("--host", "::1"), ("--host", "localhost")):
        result, seen = serve(*args)
        assert result.exit_code == 0 and auth_of(seen) is None, args
    path = tmp_path / "token"
    path.write_text("tok-" + "y" * 40)
    result, seen = serve("--host", "0.0.0.0", "--token-file", str(path))
    assert result.exit_code == 0 and seen["host"] == "0.0.0.0"


def test_token_new_prints_a_token_and_its_config_line() -> None:
    result = CliRunner().invoke(cli, ["token", "new", "--name", "etl"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    token = lines[0]
    assert len(token) >= 40
    assert f'token_sha256 = "{token_sha256(token)}"' in result.output
    assert '# name = "etl"' in result.output
    data = CliRunner().invoke(cli, ["--output", "json", "token", "new"]).output
    assert '"token_sha256"' in data


def test_serve_subprocess_never_logs_a_token(tmp_path: Path) -> None:
    config = tmp_path / "auth.toml"
    tokens = write_auth_config(config)
    out = tmp_path / "serve.log"
    with out.open("wb") as sink:
        proc, url = serve_in_subprocess(
            f"sqlite:///{tmp_path / 's.db'}", tmp_path / "wh", output=sink,
            extra_args=["--auth-config", str(config), "--log-level", "debug"])
        try:
            for who, token in tokens.items():
                for header in (f"Bearer {token}", f"bearer {token}x", token):
                    httpx.post(url + "/api/v1/refs", json={"name": f"etl-{who}"},
                               headers={"Authorization": header})
                    httpx.get(url + "/iceberg/v1/config", headers={"Authorization": header})
            assert httpx.get(url + "/api/v1/refs").status_code == 401
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    text = out.read_text(errors="replace")
    assert "lakeversion serving" in text and "4 principal(s)" in text
    for who, token in tokens.items():
        assert token not in text, who
