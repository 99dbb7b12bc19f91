"""The FileIO configuration value: where its properties come from, what is shown, what is
vended, and the `--io` options of `serve` and `gc`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from spark_lakeversion.cli.main import cli
from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.fileio import FileIOConfig, parse_option


def test_environment_then_file_then_options(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "env-key", "AWS_SECRET_ACCESS_KEY": "env-secret",
           "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://generic:1",
           "AWS_ENDPOINT_URL_S3": "http://s3-only:2",
           "PYICEBERG_S3__PATH_STYLE_ACCESS": "true", "PYICEBERG_CATALOG__X__URI": "ignored",
           "HOME": "/root"}
    from_env = FileIOConfig.from_environment(env)
    assert dict(from_env) == {"s3.access-key-id": "env-key", "s3.secret-access-key": "env-secret",
                              "s3.region": "eu-west-1", "s3.endpoint": "http://s3-only:2",
                              "s3.path-style-access": "true"}
    config_file = tmp_path / "io.properties"
    config_file.write_text("# storage\n\ns3.region = us-east-2\ns3.endpoint=http://file:3\n")
    config = FileIOConfig.from_sources(["s3.endpoint=http://cli:4/?a=b"], config_file, env)
    assert config["s3.region"] == "us-east-2"  # the file over the environment
    assert config["s3.endpoint"] == "http://cli:4/?a=b"  # --io over the file; `=` kept
    assert config["s3.access-key-id"] == "env-key"


def test_secrets_are_never_shown_and_vended_only_as_storage_settings() -> None:
    config = FileIOConfig({"s3.endpoint": "http://e:1", "s3.region": "r1",
                           "s3.access-key-id": "AKIA-visible-nowhere",
                           "s3.secret-access-key": "very-secret", "py-io-impl": "x.Y"})
    for text in (config.describe(), repr(config), str(config)):
        assert "very-secret" not in text and "AKIA-visible-nowhere" not in text
        assert "s3.endpoint=http://e:1" in text
    assert config.vended() == {"s3.endpoint": "http://e:1", "s3.region": "r1",
                               "client.region": "r1", "s3.access-key-id": "AKIA-visible-nowhere",
                               "s3.secret-access-key": "very-secret"}
    assert config.credentials() == {"s3.access-key-id": "AKIA-visible-nowhere",
                                    "s3.secret-access-key": "very-secret"}
    assert FileIOConfig().describe() == "defaults" and FileIOConfig().vended() == {}


def test_environment_spelling_round_trips() -> None:
    config = FileIOConfig({"s3.endpoint": "http://e:1", "s3.path-style-access": "true",
                           "s3.signer.uri": "http://signer"})
    assert FileIOConfig.from_environment(config.as_environment()) == config
    with pytest.raises(InvalidInput, match="no environment spelling"):
        FileIOConfig({"py-io-impl": "x.Y"}).as_environment()


@pytest.mark.parametrize("text", ["s3.endpoint", "=value", " =x", "a\x01=b"])
def test_bad_options_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_option(text)


def test_unreadable_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read the FileIO config file"):
        FileIOConfig.from_file(tmp_path / "missing.properties")
    bad = tmp_path / "bad.properties"
    bad.write_text("s3.endpoint http://e:1\n")
    with pytest.raises(InvalidInput, match="bad.properties:1: expected PROP=VALUE"):
        FileIOConfig.from_file(bad)


def test_serve_and_gc_refuse_a_bad_io_option(tmp_path: Path) -> None:
    runner = CliRunner()
    store = f"sqlite:///{tmp_path / 'store.db'}"
    result = runner.invoke(cli, ["serve", "--store", store, "--io", "s3.endpoint"])
    assert result.exit_code == 1  # bad input or usage (cli/output.py)
    assert "expected PROP=VALUE" in result.output
    result = runner.invoke(cli, ["--store", store, "gc", "--io", "nothing"])
    assert result.exit_code == 1  # bad input or usage (cli/output.py)
    assert "expected PROP=VALUE" in result.output
