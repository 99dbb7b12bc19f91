"""The auth config file, grants' globs and tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_lakeversion.auth import (
    AuthConfig,
    Permission,
    check_token,
    load_auth_config,
    new_token,
    token_sha256,
)
from spark_lakeversion.errors import InvalidInput

ETL = new_token()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auth.toml"
    path.write_text(text)
    return path


def etl_config(tmp_path: Path) -> AuthConfig:
    return load_auth_config(write(tmp_path, f'''
[[principal]]
name = "etl"
token_sha256 = "{token_sha256(ETL)}"
grants = [
  {{ refs = "etl-*", allow = ["read", "write", "create", "delete"] }},
  {{ refs = "main",  allow = ["read", "merge"] }},
  {{ refs = "user/*/scratch", allow = ["admin"] }},
]
'''))


def test_globs_match_whole_names_and_etl_star_grants_nothing_on_main(tmp_path: Path) -> None:
    etl = etl_config(tmp_path).authenticate(ETL)
    assert etl is not None and etl.name == "etl"
    assert etl.may(Permission.WRITE, "etl-daily")
    assert etl.may(Permission.DELETE, "etl-")
    assert not etl.may(Permission.WRITE, "main")
    assert not etl.may(Permission.CREATE, "main")
    assert etl.may(Permission.MERGE, "main") and etl.may(Permission.READ, "main")
    assert not etl.may(Permission.MERGE, "etl-daily")
    assert not etl.may(Permission.READ, "xetl-daily")  # anchored at the start
    assert not etl.may(Permission.READ, "mainline")  # and at the end
    # admin gives every permission on its refs, and nothing store-wide unless refs = "*"
    assert etl.may(Permission.DELETE, "user/ann/scratch")
    assert not etl.may_everywhere(Permission.ADMIN)
    assert not etl.may_everywhere(Permission.READ)


def test_unknown_or_empty_tokens_find_nobody(tmp_path: Path) -> None:
    config = etl_config(tmp_path)
    assert config.authenticate(ETL + "x") is None
    assert config.authenticate("") is None
    assert config.authenticate(token_sha256(ETL)) is None  # the hash is not the token


@pytest.mark.parametrize("text, words", [
    ("", "no [[principal]]"),
    ("[[principal]]\nname = 'a'\ntoken = 'x'\ntoken_sha256 = '" + "0" * 64 + "'",
     "unknown field(s) token"),
    ("[[principal]]\nname = 'a'\ntoken_sha256 = 'abc'", "64 hex digits"),
    ("[[principal]]\nname = 'a b'\ntoken_sha256 = '" + "0" * 64 + "'", "name must be"),
    ("[[principal]]\nname = 'a'\ntoken_sha256 = '" + "0" * 64 + "'\n"
     "grants = [{ refs = 'main', allow = ['push'] }]", "unknown permission 'push'"),
    ("[[principal]]\nname = 'a'\ntoken_sha256 = '" + "0" * 64 + "'\n"
     "grants = [{ refs = 'main', allow = [] }]", "non-empty list"),
    ("[[principal]]\nname = 'a'\ntoken_sha256 = '" + "0" * 64 + "'\n"
     "grants = [{ refs = 'ma in', allow = ['read'] }]", "glob over ref names"),
    ("[[principal]]\nname = 'a'\ntoken_sha256 = '" + "0" * 64 + "'\n"
     "[[principal]]\nname = 'a'\ntoken_sha256 = '" + "1" * 64 + "'", "defined twice"),
    ("[[principal]]\nname = 'a'\ntoken_sha256 = '" + "0" * 64 + "'\n"
     "[[principal]]\nname = 'b'\ntoken_sha256 = '" + "0" * 64 + "'", "same token as 'a'"),
    ("[[principal]\n", "not valid TOML"),
])
def test_bad_configs_are_refused_with_what_is_wrong(tmp_path: Path, text: str,
                                                    words: str) -> None:
    with pytest.raises(InvalidInput, match="auth config") as err:
        load_auth_config(write(tmp_path, text))
    assert words in err.value.message


def test_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read auth config"):
        load_auth_config(tmp_path / "nope.toml")


def test_token_rules() -> None:
    token = new_token()
    assert len(token) >= 40 and token != new_token()
    assert token_sha256(token) == token_sha256(token) and len(token_sha256(token)) == 64
    for bad in ("", "   ", "a b", "\u00e9t\u00e9", " lead"):
        with pytest.raises(InvalidInput) as err:
            check_token(bad, "--token")
        assert err.value.message.startswith("--token ")
        assert bad.strip() == "" or bad.strip() not in err.value.message
    single = AuthConfig.single(token)
    who = single.authenticate(token)
    assert who is not None and who.unrestricted and who.may_everywhere(Permission.ADMIN)
    with pytest.raises(InvalidInput, match="empty"):
        AuthConfig.single("")


def test_the_example_config_in_conf_loads() -> None:
    config = load_auth_config(Path(__file__).parents[2] / "conf" / "auth.example.toml")
    assert {p.name for p in config.principals} >= {"admin", "etl", "analyst"}
