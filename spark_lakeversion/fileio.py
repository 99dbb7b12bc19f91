"""How the server opens table files: one FileIO configuration value.

`FileIOConfig` is the set of pyiceberg FileIO properties (`s3.endpoint`, `s3.region`,
`s3.access-key-id`, `s3.secret-access-key`, `s3.path-style-access`, ...) the server uses for
every metadata read and write, register, the content merge and gc. It is built once, from
(lowest precedence first) the standard environment (`AWS_...`, `PYICEBERG_S3__...`), a
properties file (`--io-config`) and `--io PROP=VALUE` options, and carried in the server's
`ServerContext`. Clients never set it: table properties are not FileIO properties here.

It is a read-only `Mapping[str, str]`, so it goes wherever FileIO properties are taken. Its
`repr` and `describe()` hide secrets, and `vended()` is what a client that asked for
`X-Iceberg-Access-Delegation: vended-credentials` receives.

This module is also the one place that turns it into clients (each library imported only
when used): pyiceberg's FileIO (`pyiceberg_file_io`, cached), boto3's S3 client
(`boto3_s3_client`), pyarrow file systems (`pyarrow_filesystem`), deltalake's
`storage_options` (`deltalake_storage_options`) and DuckDB's S3 secret
(`duckdb_s3_secret`). The region default for S3 lives here once (`s3_region`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from spark_lakeversion.errors import InvalidInput

#: the standard AWS environment, as FileIO properties (first variable set wins)
AWS_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "s3.access-key-id": ("AWS_ACCESS_KEY_ID",),
    "s3.secret-access-key": ("AWS_SECRET_ACCESS_KEY",),
    "s3.session-token": ("AWS_SESSION_TOKEN",),
    "s3.region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "s3.endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
}
#: `PYICEBERG_<GROUP>__<NAME>` (pyiceberg's own spelling) for these groups is `<group>.<name>`
#: with `_` as `-`: `PYICEBERG_S3__ACCESS_KEY_ID` is `s3.access-key-id`
PYICEBERG_GROUPS = ("s3", "client", "gcs", "adls", "hdfs", "hf")
#: properties a client may receive (vended): storage settings, never the server's own
#: choices such as `py-io-impl`
VENDED_PREFIXES = ("s3.", "client.", "gcs.", "adls.")
#: properties holding secrets: never shown, only vended to a client that asked
SECRET_WORDS = ("secret", "token", "password", "key-id", "account-key", "sas", "credential",
                "connection-string")
#: the secret-bearing properties vended per location as `storage-credentials`
CREDENTIAL_PROPERTIES = ("s3.access-key-id", "s3.secret-access-key", "s3.session-token",
                         "client.access-key-id", "client.secret-access-key",
                         "client.session-token", "gcs.oauth2.token", "adls.sas-token",
                         "adls.account-key")


def is_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


def _check(name: object, value: object, where: str) -> tuple[str, str]:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise InvalidInput(f"{where}: a FileIO property needs a name (PROP=VALUE)")
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: FileIO property {name} must have a string value")
    if any(ord(c) < 0x20 for c in name + value):
        raise InvalidInput(f"{where}: FileIO property {name} contains control characters")
    return name, value


class FileIOConfig(Mapping[str, str]):
    """FileIO properties, immutable; `FileIOConfig()` is the empty (local files) config."""

    def __init__(self, properties: Mapping[str, str] | None = None) -> None:
        checked = dict(_check(k, v, "FileIO properties") for k, v in
                       (properties or {}).items())
        self._properties: dict[str, str] = checked
        self._key = tuple(sorted(checked.items()))

    # ---- Mapping ------------------------------------------------------------------------
    def __getitem__(self, name: str) -> str:
        return self._properties[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._properties)

    def __len__(self) -> int:
        return len(self._properties)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileIOConfig):
            return self._key == other._key
        return isinstance(other, Mapping) and dict(self._properties) == dict(other)

    def __repr__(self) -> str:
        return f"FileIOConfig({self.describe()})"

    @property
    def cache_key(self) -> tuple[tuple[str, str], ...]:
        """A hashable identity, for caches of opened file systems."""
        return self._key

    # ---- building -----------------------------------------------------------------------
    @classmethod
    def of(cls, value: Mapping[str, str] | None) -> FileIOConfig:
        return value if isinstance(value, FileIOConfig) else cls(value)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> FileIOConfig:
        """The standard `AWS_...` variables and `PYICEBERG_<GROUP>__<NAME>` ones (these win)."""
        env = os.environ if environ is None else environ
        props: dict[str, str] = {}
        for prop, names in AWS_ENVIRONMENT.items():
            for name in names:
                if env.get(name):
                    props[prop] = env[name]
                    break
        for name, value in env.items():
            group, sep, rest = name.lower().partition("__")
            if not sep or not group.startswith("pyiceberg_") or not rest:
                continue
            group = group[len("pyiceberg_"):]
            if group in PYICEBERG_GROUPS:
                props[f"{group}.{rest.replace('__', '.').replace('_', '-')}"] = value
        return cls(props)

    @classmethod
    def from_file(cls, path: str | Path) -> FileIOConfig:
        """A properties file: `PROP=VALUE` lines; blank lines and `#` comments ignored."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read the FileIO config file {str(path)!r}: "
                               f"{type(exc).__name__}") from None
        props: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            props.update([parse_option(stripped, f"{path}:{number}")])
        return cls(props)

    @classmethod
    def from_sources(cls, options: Iterable[str] = (), config_file: str | Path | None = None,
                     environ: Mapping[str, str] | None = None) -> FileIOConfig:
        """Environment, then the config file, then `--io PROP=VALUE` options (last wins)."""
        props = dict(cls.from_environment(environ))
        if config_file:
            props.update(cls.from_file(config_file))
        for option in options:
            props.update([parse_option(option, "--io")])
        return cls(props)

    def as_environment(self) -> dict[str, str]:
        """The `PYICEBERG_<GROUP>__<NAME>` variables `from_environment` reads back as these
        properties (to hand them to a child process without a command line)."""
        out: dict[str, str] = {}
        for name, value in self._properties.items():
            group, _, rest = name.partition(".")
            if group not in PYICEBERG_GROUPS or not rest or "_" in rest:
                raise InvalidInput(f"FileIO property {name} has no environment spelling")
            out[f"PYICEBERG_{group.upper()}__"
                f"{rest.replace('.', '__').replace('-', '_').upper()}"] = value
        return out

    # ---- what others see ----------------------------------------------------------------
    def describe(self) -> str:
        """`name=value, ...` with secrets shown as `***`: safe to print and log."""
        if not self._properties:
            return "defaults"
        return ", ".join(f"{k}={'***' if is_secret(k) else v}"
                         for k, v in sorted(self._properties.items()))

    def vended(self) -> dict[str, str]:
        """The storage config a client needs to read and write the server's tables
        (Iceberg's LoadTableResult `config`): the storage properties, with `client.region`
        added from `s3.region` for Java's S3FileIO."""
        out = {k: v for k, v in self._properties.items() if k.startswith(VENDED_PREFIXES)}
        if "s3.region" in out and "client.region" not in out:
            out["client.region"] = out["s3.region"]
        return out

    def credentials(self) -> dict[str, str]:
        """The secret part of `vended()`, for `storage-credentials` entries."""
        return {k: v for k, v in self._properties.items() if k in CREDENTIAL_PROPERTIES}

    def region(self) -> str | None:
        return self._properties.get("s3.region") or self._properties.get("client.region")


def parse_option(text: str, where: str = "--io") -> tuple[str, str]:
    """`PROP=VALUE` (the value may contain `=`) as (name, value), or `InvalidInput`."""
    name, sep, value = text.partition("=")
    if not sep:
        raise InvalidInput(f"{where}: expected PROP=VALUE")
    return _check(name.strip(), value.strip(), where)


NO_FILE_IO = FileIOConfig()

# ---- clients built from one FileIOConfig ----------------------------------------------------
#: without a region, pyarrow and boto3 ask AWS where a bucket lives: a custom endpoint
#: (MinIO, moto) has no such answer, so default as the AWS SDKs do
DEFAULT_S3_REGION = "us-east-1"
S3_SCHEMES = ("s3", "s3a", "s3n")


def _scheme(location: str) -> str:
    return location.partition("://")[0].lower() if "://" in location else "file"


def s3_region(io: Mapping[str, str] | None) -> str:
    """The S3 region of `io`, else `DEFAULT_S3_REGION`."""
    return FileIOConfig.of(io).region() or DEFAULT_S3_REGION


def _s3_first(io: Mapping[str, str], name: str) -> str | None:
    """`s3.<name>`, else Java's `client.<name>` spelling."""
    return io.get(f"s3.{name}") or io.get(f"client.{name}") or None


def _path_style(io: Mapping[str, str]) -> bool:
    return str(io.get("s3.path-style-access", "")).strip().lower() == "true"


_ios_lock = threading.Lock()
_ios: dict[tuple[Any, str], Any] = {}


def pyiceberg_file_io(location: str, io: Mapping[str, str] | None = None) -> Any:
    """pyiceberg's FileIO for `location` under the server's FileIO properties, opened once
    per configuration and scheme: an S3 file system is costly to set up. Never a client's
    table properties: they could name another endpoint or a FileIO class to import."""
    from pyiceberg.io import load_file_io

    config = FileIOConfig.of(io)
    scheme = _scheme(location)
    key = (config.cache_key, scheme)
    with _ios_lock:
        opened = _ios.get(key)
    if opened is None:
        props = dict(config)
        if scheme in S3_SCHEMES:
            props["s3.region"] = s3_region(config)
        opened = load_file_io(props, location)
        with _ios_lock:
            opened = _ios.setdefault(key, opened)
    return opened


def boto3_s3_client(io: Mapping[str, str] | None, *, retries: int = 5) -> Any:
    """A boto3 S3 client from `s3.endpoint`, `s3.region`, the keys (`s3.` or `client.`) and
    `s3.path-style-access` (else the AWS SDK's own chain). `ImportError` without boto3."""
    import boto3
    from botocore.config import Config

    config = FileIOConfig.of(io)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.get("s3.endpoint") or None,
        region_name=s3_region(config),
        aws_access_key_id=_s3_first(config, "access-key-id"),
        aws_secret_access_key=_s3_first(config, "secret-access-key"),
        aws_session_token=_s3_first(config, "session-token"),
        config=Config(s3={"addressing_style": "path" if _path_style(config) else "auto"},
                      retries={"max_attempts": retries, "mode": "standard"}))


def pyarrow_filesystem(uri: str, io: Mapping[str, str] | None = None) -> Any:
    """The pyarrow `FileSystem` for `uri`: local files, S3 from the FileIO properties, any
    other scheme as pyarrow resolves it."""
    from pyarrow import fs as pafs

    scheme = _scheme(uri)
    if scheme == "file":
        return pafs.LocalFileSystem()
    if scheme in S3_SCHEMES:
        config = FileIOConfig.of(io)
        endpoint = config.get("s3.endpoint") or ""
        return pafs.S3FileSystem(
            access_key=_s3_first(config, "access-key-id"),
            secret_key=_s3_first(config, "secret-access-key"),
            session_token=_s3_first(config, "session-token"),
            region=s3_region(config),
            endpoint_override=endpoint.split("://", 1)[-1] or None,
            scheme="http" if endpoint.startswith("http://") else "https")
    return pafs.FileSystem.from_uri(uri)[0]


def deltalake_storage_options(location: str, io: Mapping[str, str] | None
                              ) -> dict[str, str] | None:
    """deltalake's `storage_options` for a table at `location`: for S3 the endpoint,
    region, keys and addressing style of the FileIO properties; None (deltalake's own
    defaults) for every other scheme, so local tables open as they always did."""
    if _scheme(location) not in S3_SCHEMES:
        return None
    config = FileIOConfig.of(io)
    options = {"AWS_REGION": s3_region(config)}
    for name, prop in (("AWS_ACCESS_KEY_ID", "access-key-id"),
                       ("AWS_SECRET_ACCESS_KEY", "secret-access-key"),
                       ("AWS_SESSION_TOKEN", "session-token")):
        value = _s3_first(config, prop)
        if value:
            options[name] = value
    endpoint = config.get("s3.endpoint")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    if _path_style(config):
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return options


def _sql_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_s3_secret(io: Mapping[str, str] | None, scopes: Sequence[str],
                     name: str = "lakeversion_s3") -> str:
    """DuckDB's `CREATE SECRET` for S3 from the FileIO properties, scoped to `scopes`."""
    config = FileIOConfig.of(io)
    parts = ["TYPE s3"]
    for prop, key in (("s3.access-key-id", "KEY_ID"), ("s3.secret-access-key", "SECRET"),
                      ("s3.session-token", "SESSION_TOKEN"), ("s3.region", "REGION")):
        if config.get(prop):
            parts.append(f"{key} {_sql_quote(config[prop])}")
    endpoint = config.get("s3.endpoint")
    if endpoint:
        secure = not endpoint.startswith("http://")
        parts.append(f"ENDPOINT {_sql_quote(endpoint.split('://', 1)[-1].rstrip('/'))}")
        parts.append(f"USE_SSL {'true' if secure else 'false'}")
    if _path_style(config):
        parts.append("URL_STYLE 'path'")
    parts.append("SCOPE [" + ", ".join(_sql_quote(s) for s in scopes) + "]")
    return f"CREATE SECRET {name} ({', '.join(parts)})"


__all__ = ["DEFAULT_S3_REGION", "FileIOConfig", "NO_FILE_IO", "boto3_s3_client",
           "deltalake_storage_options", "duckdb_s3_secret", "is_secret", "parse_option",
           "pyarrow_filesystem", "pyiceberg_file_io", "s3_region"]
