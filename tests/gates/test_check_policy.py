"""`CheckPolicy`, the operator's word on what checks reach: its values are checked when a
server is built (`lakeversion serve --check-module/--webhook-allow`, the environment), and
`check_url` allows a listed host glob or else public addresses only."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from spark_lakeversion.checks.webhook import check_url
from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.server.app import create_app
from spark_lakeversion.versioning.gates.policy import CheckPolicy


@pytest.mark.parametrize(("modules", "hosts"), [
    (["not a module"], []), (["os..path"], []), ([""], []),
    ([], ["http://evil"]), ([], ["host/path"]), ([], [""])])
def test_bad_policy_values_are_invalid_input(modules: list[str], hosts: list[str]) -> None:
    with pytest.raises(InvalidInput):
        CheckPolicy.of(modules, hosts)


def test_policy_from_environment() -> None:
    policy = CheckPolicy.from_environment({"LAKEVERSION_CHECK_MODULES": "acme.checks, qa",
                                           "LAKEVERSION_WEBHOOK_ALLOW": "Hooks.Internal:8*"})
    assert policy == CheckPolicy(("acme.checks", "qa"), ("hooks.internal:8*",))
    assert policy.allows_module("acme.checks.orders") and policy.allows_module("qa")
    assert not policy.allows_module("acme") and not policy.allows_module("qa2")
    assert CheckPolicy.from_environment({}) == CheckPolicy()


def test_the_server_keeps_the_policy_it_was_built_with(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "wh"),
                     check_modules=["acme.checks"], webhook_allow=["127.0.0.1:9*"])
    store = app.state.ctx.store
    assert store.check_policy == CheckPolicy(("acme.checks",), ("127.0.0.1:9*",))


@pytest.mark.parametrize(("url", "allow"), [
    ("http://127.0.0.1:8080/hook", ["127.0.0.1:80*"]),
    ("http://127.0.0.1/hook", ["127.0.0.1"]),
    ("https://hooks.internal/x", ["*.internal"]),  # listed: not even resolved
    ("http://93.184.216.34/hook", []),  # a public address needs no listing
])
def test_allowed_webhooks(url: str, allow: list[str]) -> None:
    check_url(url, CheckPolicy.of(webhook_allow=allow))


@pytest.mark.parametrize(("url", "allow", "message"), [
    ("http://127.0.0.1:9090/hook", ["127.0.0.1:80*"], "loopback"),
    ("http://localhost:8080/hook", ["127.0.0.1"], "loopback"),  # the host as written
    ("http://192.168.1.10/hook", [], "private"),
    ("http://100.64.0.1/hook", [], "private"),
    ("http://224.0.0.1/hook", [], "private"),
    ("ftp://93.184.216.34/x", [], "not an http"),
    ("http://no-such-host.invalid/x", [], "does not resolve"),
])
def test_refused_webhooks(url: str, allow: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_url(url, CheckPolicy.of(webhook_allow=allow))


@pytest.mark.parametrize("option", [["--check-module", "not a module"],
                                    ["--webhook-allow", "http://x/"]])
def test_serve_refuses_a_bad_policy_before_listening(tmp_path: Path,
                                                     option: list[str]) -> None:
    result = CliRunner().invoke(cli, ["serve", "--store", f"sqlite:///{tmp_path / 's.db'}",
                                      "--warehouse", str(tmp_path / "wh"), "--port", "1",
                                      *option])
    assert result.exit_code == 1, result.output  # the CLI's usage error
    assert "--check-module/--webhook-allow" in result.output and option[1] in result.output
    assert "Traceback" not in result.output
