"""A lakeversion server whose warehouse is a fresh bucket on the run's moto S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_lakeversion.server.embedded import start_embedded_server
from tests.s3.helpers import MotoS3, S3Lake


@pytest.fixture
def s3_lake(moto_s3: MotoS3, tmp_path: Path) -> Iterator[S3Lake]:
    bucket = moto_s3.bucket()
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=f"s3://{bucket}/wh",
                               allowed_locations=[f"s3://{bucket}/extra"],
                               io=moto_s3.io()) as server:
        yield S3Lake(moto_s3, bucket, server)
