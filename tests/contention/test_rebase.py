"""Server-side rebase of pure appends (issue 24): a stale append lands as the client's own
retry would have made it, and every other commit still answers 409."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyiceberg.exceptions import CommitFailedException, ForbiddenError
from pyiceberg.manifest import read_manifest_list
from pyiceberg.types import StringType

from spark_lakeversion.formats.iceberg.catalog.settings import AppendSettings
from tests.contention.helpers import (
    NO_RETRY,
    catalog,
    duckdb_ids,
    ids,
    log,
    new_table,
    rows,
    served,
)

FLINK = {"flink.job-id": "job-1", "flink.max-committed-checkpoint-id": "7",
         "flink.operator-id": "op-9"}


def _rebased_lists(root: Path) -> list[Path]:
    return sorted(root.rglob("snap-*-rebased-*.avro"))


def test_a_stale_append_is_rebased_as_the_clients_retry_would_make_it(tmp_path: Path) -> None:
    with served(tmp_path) as server:
        new_table(server, properties=NO_RETRY)  # no client retry: a 409 would surface
        a, b = catalog(server).load_table("db.t"), catalog(server).load_table("db.t")
        a.append(rows(1, 2))
        head = a.metadata.current_snapshot()
        b.append(rows(3), snapshot_properties=FLINK)
        table = catalog(server).load_table("db.t")
        snap = table.metadata.current_snapshot()
        # the client's own snapshot id, on top of the head, with the next sequence number
        assert snap.snapshot_id == b.metadata.current_snapshot().snapshot_id
        assert (snap.parent_snapshot_id, snap.sequence_number) == \
            (head.snapshot_id, head.sequence_number + 1)
        # totals recomputed on the head's; every other key (Flink's state) kept as written
        summary = snap.summary.additional_properties
        assert (summary["total-records"], summary["total-data-files"],
                summary["added-records"]) == ("3", "2", "1")
        assert {k: summary[k] for k in FLINK} == FLINK
        # a new manifest list the server wrote under the metadata path; the client's file
        # is still there, untouched, and its manifests are reused verbatim
        listed = Path(urlparse(snap.manifest_list).path)
        assert listed.parent == Path(urlparse(table.metadata.location).path) / "metadata"
        assert listed.name.startswith(f"snap-{snap.snapshot_id}-rebased-")
        own = [p for p in listed.parent.glob(f"snap-{snap.snapshot_id}-*.avro") if p != listed]
        assert len(own) == 1
        io = table.io
        client_paths = [m.manifest_path for m in read_manifest_list(io.new_input(str(own[0])))]
        head_paths = [m.manifest_path for m in head.manifests(io)]
        rebased = snap.manifests(io)
        assert [m.manifest_path for m in rebased] == \
            [p for p in client_paths if p not in head_paths] + head_paths
        assert all(m.sequence_number == snap.sequence_number for m in rebased[:1])
        assert ids(table) == [1, 2, 3] == duckdb_ids(table.metadata_location)
        commit = log(server)[0]
        assert commit["properties"]["lakeversion.rebased"] == str(snap.snapshot_id)
        assert commit["properties"]["lakeversion.rebased-from"] == "none"
        assert f"rebased onto snapshot {head.snapshot_id}" in commit["message"]


MERGING = {"commit.manifest-merge.enabled": "true", "commit.manifest.min-count-to-merge": "3"}


def _entries(table: object, manifest: object) -> list[tuple[str, str, int | None]]:
    """(file name, status, sequence number) of a manifest's entries, as pyiceberg reads
    them (sequence numbers inherited)."""
    io = table.io  # type: ignore[attr-defined]
    return sorted((Path(e.data_file.file_path).name, e.status.name, e.sequence_number)
                  for e in manifest.fetch_manifest_entry(io, discard_deleted=False))  # type: ignore[attr-defined]


def test_a_stale_append_whose_client_merged_manifests_is_rebased(tmp_path: Path) -> None:
    """pyiceberg merges manifests (`commit.manifest-merge.enabled`): the merged manifest's
    EXISTING files are all still live at the head, so it is reused verbatim and the
    manifests it replaced are left out of the rebased list."""
    with served(tmp_path) as server:
        new_table(server, properties={**NO_RETRY, **MERGING}).append(rows(1))  # [m1]
        a = catalog(server).load_table("db.t")  # reads [m1]: 2 manifests, no merge
        catalog(server).load_table("db.t").append(rows(2))  # [m2, m1]
        b = catalog(server).load_table("db.t")  # reads [m2, m1]: 3, merges them
        a.append(rows(3))  # rebased: [a, m2, m1]
        head = catalog(server).load_table("db.t").metadata.current_snapshot()
        head_manifests = head.manifests(a.io)
        assert len(head_manifests) == 3
        b.append(rows(4))  # stale, merged: rebased onto [a, m2, m1] as [B, a]
        table = catalog(server).load_table("db.t")
        snap = table.metadata.current_snapshot()
        assert snap.snapshot_id == b.metadata.current_snapshot().snapshot_id
        assert (snap.parent_snapshot_id, snap.sequence_number) == \
            (head.snapshot_id, head.sequence_number + 1)
        manifests = snap.manifests(table.io)
        # the client's merged manifest (its own, not the head's), then the head's but the
        # two it merged (m2, m1): only a's is left
        assert manifests[0].added_snapshot_id == snap.snapshot_id
        assert [m.manifest_path for m in manifests[1:]] == [head_manifests[0].manifest_path]
        assert manifests[0].sequence_number == snap.sequence_number
        assert manifests[0].min_sequence_number == 1  # its oldest file's, kept
        statuses = [status for _, status, _ in _entries(table, manifests[0])]
        assert sorted(statuses) == ["ADDED", "EXISTING", "EXISTING"]
        # the EXISTING files keep the sequence numbers they were added with
        assert sorted(seq for _, status, seq in _entries(table, manifests[0])
                      if status == "EXISTING") == [1, 2]
        assert ids(table) == [1, 2, 3, 4] == duckdb_ids(table.metadata_location)
        assert table.metadata.current_snapshot().summary.additional_properties[
            "total-records"] == "4"
        assert log(server)[0]["properties"]["lakeversion.rebased"] == str(snap.snapshot_id)


def test_two_writers_merging_the_same_manifests_the_second_answers_409(tmp_path: Path
                                                                          ) -> None:
    """Both merged [m2, m1]; the first's merge took them off the head's list, so the
    second's EXISTING files are no longer in the manifests it replaced: refused, and its
    retry (a fresh read, merging again) lands."""
    with served(tmp_path) as server:
        table = new_table(server, properties={**NO_RETRY, **MERGING})
        table.append(rows(1))
        table.append(rows(2))
        a, b = catalog(server).load_table("db.t"), catalog(server).load_table("db.t")
        a.append(rows(3))
        head = log(server)[0]["id"]
        with pytest.raises(CommitFailedException, match="not rebased: .*merged are no "
                                                         "longer listed at the head"):
            b.append(rows(4))
        assert log(server)[0]["id"] == head
        assert _rebased_lists(tmp_path) == []
        b = catalog(server).load_table("db.t")
        b.append(rows(4))
        assert ids(b) == [1, 2, 3, 4]


@pytest.mark.parametrize("between", ["overwrite", "delete", "schema change",
                                     "table property off", "merged manifests",
                                     "merged manifests, then a delete"])
def test_a_stale_append_that_is_not_safe_answers_409(tmp_path: Path, between: str) -> None:
    with served(tmp_path) as server:
        props = dict(NO_RETRY)
        if between == "table property off":
            props["lakeversion.rebase-appends"] = "false"
        if between.startswith("merged manifests"):
            props.update({"commit.manifest-merge.enabled": "true",
                          "commit.manifest.min-count-to-merge": "2"})
        new_table(server, properties=props).append(rows(1))
        a, b = catalog(server).load_table("db.t"), catalog(server).load_table("db.t")
        if between == "overwrite":
            a.overwrite(rows(5))
        elif between in ("delete", "merged manifests, then a delete"):
            a.delete("id = 1")
        elif between == "schema change":  # then an append, so the ref moved too
            with a.update_schema() as update:
                update.add_column("note", StringType())
            catalog(server).load_table("db.t").append(rows(2))
        else:
            a.append(rows(2))
        before, head = ids(catalog(server).load_table("db.t")), log(server)[0]["id"]
        with pytest.raises(CommitFailedException, match="not rebased|rebase-appends"):
            b.append(rows(3))
        assert ids(catalog(server).load_table("db.t")) == before
        assert log(server)[0]["id"] == head
        assert _rebased_lists(tmp_path) == []  # a refused rebase leaves no file behind
        fresh = catalog(server).load_table("db.t")
        fresh.append(rows(4))
        assert ids(fresh) == sorted([*before, 4])


def test_serve_without_rebase_answers_409_as_before(tmp_path: Path) -> None:
    with served(tmp_path, AppendSettings(rebase=False)) as server:
        new_table(server, properties=NO_RETRY)
        a, b = catalog(server).load_table("db.t"), catalog(server).load_table("db.t")
        a.append(rows(1))
        with pytest.raises(CommitFailedException, match="Requirement failed: branch main"):
            b.append(rows(2))
        assert ids(catalog(server).load_table("db.t")) == [1]
        assert _rebased_lists(tmp_path) == []


def test_a_rebased_append_meets_protection(tmp_path: Path) -> None:
    with served(tmp_path) as server:
        new_table(server, properties=NO_RETRY)
        a, b = catalog(server).load_table("db.t"), catalog(server).load_table("db.t")
        a.append(rows(1))
        server.store.protect_branch("main")
        with pytest.raises(ForbiddenError, match="protected"):
            b.append(rows(2))
        assert ids(catalog(server).load_table("db.t")) == [1]
        assert _rebased_lists(tmp_path) == []  # the server removed the list it wrote


def test_a_rebased_append_passes_gcs_fence(tmp_path: Path) -> None:
    """The files a rebased commit adds (its manifests and data files, the list the server
    wrote) pass gc's fence: older than gc's cutoff, the commit is refused."""
    from datetime import datetime, timedelta, timezone

    from spark_lakeversion.gc import collect_garbage
    from spark_lakeversion.wiring import open_store

    with served(tmp_path) as server:
        new_table(server, properties=NO_RETRY)
        a, b = catalog(server).load_table("db.t"), catalog(server).load_table("db.t")
        a.append(rows(1))
        gc_store = open_store(server.store.url)
        later = datetime.now(timezone.utc) + timedelta(hours=1)  # every file is older
        collect_garbage(gc_store, roots=[server.warehouse], older_than="0s", force=True,
                        now=later)
        gc_store.close()
        head = log(server)[0]["id"]
        with pytest.raises(CommitFailedException, match="gc may already have collected"):
            b.append(rows(2))
        assert log(server)[0]["id"] == head
        assert ids(catalog(server).load_table("db.t")) == [1]
        assert _rebased_lists(tmp_path) == []


def test_a_rebased_append_meets_grants(tmp_path: Path) -> None:
    from spark_lakeversion.auth import load_auth_config
    from spark_lakeversion.server.embedded import start_embedded_server
    from tests.server.access_helpers import write_auth_config

    tokens = write_auth_config(tmp_path / "auth.toml", {
        "writer": '[{ refs = "*", allow = ["read", "write", "create"] }]',
        "reader": '[{ refs = "*", allow = ["read"] }]'})
    with start_embedded_server(f"sqlite:///{tmp_path / 'store.db'}",
                               warehouse=str(tmp_path / "wh"),
                               auth=load_auth_config(tmp_path / "auth.toml")) as server:
        from pyiceberg.catalog.rest import RestCatalog

        def as_(who: str) -> object:
            return RestCatalog(who, uri=server.iceberg_uri, token=tokens[who])

        writer = as_("writer")
        writer.create_namespace("db")
        writer.create_table("db.t", schema=rows().schema, properties=NO_RETRY)
        stale = as_("reader").load_table("db.t")
        writer.load_table("db.t").append(rows(1))
        with pytest.raises(ForbiddenError, match="reader"):
            stale.append(rows(2))  # stale: would be rebased, but the grant comes first
        assert ids(writer.load_table("db.t")) == [1]
        assert _rebased_lists(tmp_path) == []


def test_serve_option_turns_the_rebase_off(tmp_path: Path) -> None:
    """`lakeversion serve --no-rebase-appends`: the option reaches the catalog."""
    from pyiceberg.catalog.rest import RestCatalog

    from spark_lakeversion.server.embedded import serve_in_subprocess

    proc, url = serve_in_subprocess(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "wh",
                                    extra_args=["--no-rebase-appends",
                                                "--group-commit-max", "4",
                                                "--group-commit-wait", "1.5"])
    try:
        cat = RestCatalog("c", uri=url + "/iceberg")
        cat.create_namespace("db")
        cat.create_table("db.t", schema=rows().schema, properties=NO_RETRY)
        a, b = cat.load_table("db.t"), cat.load_table("db.t")
        a.append(rows(1))
        with pytest.raises(CommitFailedException, match="Requirement failed"):
            b.append(rows(2))
        assert ids(cat.load_table("db.t")) == [1]
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_a_group_of_none(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from spark_lakeversion.cli.main import cli

    result = CliRunner().invoke(cli, ["serve", "--store", f"sqlite:///{tmp_path / 's.db'}",
                                      "--group-commit-max", "0"])
    assert result.exit_code == 1  # a usage error, before anything listens
    assert "--group-commit-max': 0 is not in the range" in result.output


def test_summary_totals_are_recomputed_and_every_other_key_kept() -> None:
    from pyiceberg.table.snapshots import Operation, Summary

    from spark_lakeversion.formats.iceberg.rebase import rebased_summary

    client = Summary(Operation.APPEND, **{
        "added-records": "5", "added-data-files": "1", "added-files-size": "100",
        "total-records": "5", "total-data-files": "1", "total-files-size": "100",
        "total-delete-files": "0", **FLINK})
    head = Summary(Operation.APPEND, **{"total-records": "40", "total-data-files": "4",
                                        "total-files-size": "1000"})
    rebased = rebased_summary(client, head)
    assert rebased is not None and rebased.operation == Operation.APPEND
    props = rebased.additional_properties
    assert (props["total-records"], props["total-data-files"], props["total-files-size"]) \
        == ("45", "5", "1100")
    assert "total-delete-files" not in props  # the head's is unknown: not made up
    assert {k: props[k] for k in FLINK} == FLINK and props["added-records"] == "5"
    first = rebased_summary(client, None)  # onto an empty table: totals from zero
    assert first is not None and first.additional_properties["total-records"] == "5"
