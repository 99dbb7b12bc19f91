"""A real S3 endpoint for tests: moto's server on a free loopback port, one per test run
(the `moto_s3` session fixture in tests/conftest.py), with a fresh bucket per user."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from spark_lakeversion.server.embedded import EmbeddedServer

#: moto accepts any credentials; these are what the server is configured with (and vends)
ACCESS_KEY = "lakeversion-test-key"
SECRET_KEY = "lakeversion-test-secret"
REGION = "us-east-1"


@dataclass
class MotoS3:
    """A running moto S3 server: `endpoint`, `io()` (the FileIO properties a server needs
    to reach it), `bucket()` (a new empty bucket), `keys()` (what a bucket holds)."""

    endpoint: str
    _server: Any = field(repr=False, default=None)
    _client: Any = field(repr=False, default=None)

    def io(self) -> dict[str, str]:
        return {"s3.endpoint": self.endpoint, "s3.region": REGION,
                "s3.access-key-id": ACCESS_KEY, "s3.secret-access-key": SECRET_KEY,
                "s3.path-style-access": "true"}

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint, region_name=REGION,
                aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        return self._client

    def bucket(self, prefix: str = "lake") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                       Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents") or ()}

    def put(self, bucket: str, key: str, body: bytes = b"x") -> str:
        self.client.put_object(Bucket=bucket, Key=key, Body=body)
        return f"s3://{bucket}/{key}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def start_moto() -> MotoS3:
    """moto's threaded server on 127.0.0.1 and an OS-chosen free port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request else
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return MotoS3(f"http://{host}:{port}", server)


@dataclass
class S3Lake:
    """One test's server over `s3://<bucket>/wh`, plus a second allowed root `.../extra`."""

    s3: MotoS3
    bucket: str
    server: EmbeddedServer

    @property
    def warehouse(self) -> str:
        return f"s3://{self.bucket}/wh"

    @property
    def extra(self) -> str:
        return f"s3://{self.bucket}/extra"

    def catalog(self, name: str = "lv", **props: Any) -> Any:
        """A stock pyiceberg RestCatalog with no S3 settings: it gets them vended."""
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(name, uri=self.server.iceberg_uri, **props)

    def keys(self, prefix: str = "") -> set[str]:
        return self.s3.keys(self.bucket, prefix)
