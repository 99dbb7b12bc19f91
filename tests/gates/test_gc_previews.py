"""gc keeps a refused merge's preview readable while it keeps history, and collects its
files once the preview is older than the retained-history window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spark_lakeversion.errors import ChecksFailed
from spark_lakeversion.gc import collect_garbage
from spark_lakeversion.model import CheckKind, CheckSpec
from tests.lake import ServerLake


def test_gc_keeps_preview_files_within_retention(lake: ServerLake) -> None:
    store = lake.store
    store.add_check(CheckSpec("main", "unique_ids", CheckKind.SQL,
                              "SELECT id FROM db.t GROUP BY id HAVING count(*) > 1"))
    store.create_ref("dev")
    lake.append("dev", "db.t", [2])
    lake.append("main", "db.t", [4])  # both sides changed db.t: the merge writes metadata
    with pytest.raises(ChecksFailed) as caught:
        store.merge("dev", "main")
    preview = caught.value.preview
    assert preview is not None
    # the preview is the only thing still reading dev's data file
    store.delete_ref("dev", force=True)
    preview_metadata = Path(str(store.get_content(preview, "db.t").fields[
        "metadata_location"]).removeprefix("file://"))
    assert preview_metadata.is_file()
    roots = [str(lake.warehouse)]
    collect_garbage(store, roots=roots, older_than=timedelta(0), force=True,
                    keep_commits_since="7d")
    assert preview_metadata.is_file()
    assert lake.ids(preview) == [1, 2, 2, 3, 4]
    # once the preview is older than the history gc keeps, its files may go
    later = datetime.now(timezone.utc) + timedelta(days=8)
    report = collect_garbage(store, roots=roots, older_than=timedelta(0), force=True,
                             keep_commits_since="7d", now=later)
    assert str(preview_metadata) in {f.path.removeprefix("file://") for f in report.garbage}
    assert not preview_metadata.exists()
    assert lake.ids("main") == [1, 2, 3, 4]
