"""A lakeversion server whose warehouse is a fresh bucket on the run's moto S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.s3.helpers import MotoS3


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


@pytest.fixture
def s3_lake(moto_s3: MotoS3, tmp_path: Path) -> Iterator[S3Lake]:
    bucket = moto_s3.bucket()
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=f"s3://{bucket}/wh",
                               allowed_locations=[f"s3://{bucket}/extra"],
                               io=moto_s3.io()) as server:
        yield S3Lake(moto_s3, bucket, server)
