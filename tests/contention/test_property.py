"""Hypothesis: random interleavings of appends (some of them concurrent), overwrites,
deletes, schema changes and reloads from several stock pyiceberg clients on one table.

The model says which commit must land and which must answer 409: an append lands when
only appends (or nothing) landed since its client last read the table, whether or not
its ref moved (then the server rebases it); it is refused when an overwrite or a delete
landed since, or a schema change when a snapshot landed since too (its ref moved). Half
the examples run on a table whose clients merge manifests (`commit.manifest-merge.enabled`,
at 3 manifests); there an append also needs every manifest of the snapshot its client read
(those it carries or merged) still listed at the head, which a concurrent merge of the
same manifests breaks.
Within a burst on such a table which member merges first is the race's: every member the
rules refuse is refused and at least one allowed member lands. Every acknowledged append
is then present exactly once, every refused one absent, pyiceberg, DuckDB and Spark read
the same rows, the snapshots form one valid chain, and every commit recorded as rebased
was a pure append with only appends between the snapshot it asserted and its new parent.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import LessThan
from pyiceberg.types import StringType

from spark_lakeversion.server.embedded import EmbeddedServer
from tests.contention.helpers import NO_RETRY, catalog, duckdb_ids, log, rows, served

CLIENTS = 3
MERGING = {"commit.manifest-merge.enabled": "true", "commit.manifest.min-count-to-merge": "3"}

step = st.one_of(
    st.tuples(st.just("append"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("burst"), st.sets(st.integers(0, CLIENTS - 1), min_size=2)),
    st.tuples(st.just("overwrite"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("delete"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("schema"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("reload"), st.integers(0, CLIENTS - 1)),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with served(tmp_path_factory.mktemp("property")) as srv:
        catalog(srv).create_namespace("db")
        yield srv


@pytest.fixture(scope="module")
def spark_catalog(spark: Any, server: EmbeddedServer) -> Iterator[str]:
    """The property's server as a Spark catalog (Iceberg's Java REST client)."""
    from tests.spark.helpers import register_catalog

    name = f"lv_p{uuid.uuid4().hex[:8]}"
    register_catalog(spark, name, server.url)
    try:
        yield name
    finally:
        spark.conf.unset("spark.lakeversion.catalog")


@dataclass
class Model:
    """The rows that must be in the table, and what landed since each client read it."""

    ids: Counter[int] = field(default_factory=Counter)
    events: list[str] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)  # client -> len(events) it read
    next_id: int = 0

    def fresh_ids(self, n: int) -> list[int]:
        self.next_id += n
        return list(range(self.next_id - n, self.next_id))

    def append_lands(self, client: int) -> bool:
        since = self.events[self.seen[client]:]
        if any(e in ("overwrite", "delete") for e in since):
            return False
        if "schema" in since:  # refused once its ref moved too (before or after it):
            return "append" not in since  # the rebase refuses a schema change between
        return True


def _manifests_kept(client_table: Any, head: Any) -> bool:
    """Whether every manifest with live files of the snapshot the client read (what its
    append carries or merges) is still listed at the head."""
    read = client_table.metadata.current_snapshot()
    if read is None:
        return True
    mine = {m.manifest_path for m in read.manifests(client_table.io)
            if m.has_added_files() or m.has_existing_files()}
    now = head.metadata.current_snapshot()
    return mine <= ({m.manifest_path for m in now.manifests(head.io)} if now else set())


def _append(table: Any, client: int, ids: list[int], outcomes: dict[int, bool]) -> None:
    try:
        table.append(rows(*ids))
        outcomes[client] = True
    except CommitFailedException:
        outcomes[client] = False


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=3, max_size=10), merging=st.booleans())
def test_interleavings_keep_every_acknowledged_append_once(server: EmbeddedServer,
                                                           spark: Any, spark_catalog: str,
                                                           steps: list[tuple[str, Any]],
                                                           merging: bool) -> None:
    name = f"db.p_{uuid.uuid4().hex[:8]}"
    catalog(server).create_table(name, schema=rows().schema,
                                 properties={**NO_RETRY, **(MERGING if merging else {})})
    tables = [catalog(server).load_table(name) for _ in range(CLIENTS)]
    model = Model(seen={c: 0 for c in range(CLIENTS)})
    acknowledged: list[int] = []
    for kind, arg in steps:
        if kind == "reload":
            tables[arg] = catalog(server).load_table(name)
            model.seen[arg] = len(model.events)
        elif kind in ("append", "burst"):
            clients = sorted(arg) if kind == "burst" else [arg]
            for c in clients:  # which of a burst lands first is up to the race: a schema
                if kind == "burst" and "schema" in model.events[model.seen[c]:]:  # change
                    tables[c] = catalog(server).load_table(name)  # would make it matter
                    model.seen[c] = len(model.events)
            batches = {c: model.fresh_ids(2) for c in clients}
            head = catalog(server).load_table(name)
            expected = {c: model.append_lands(c) and _manifests_kept(tables[c], head)
                        for c in clients}
            outcomes: dict[int, bool] = {}
            threads = [threading.Thread(target=_append,
                                        args=(tables[c], c, batches[c], outcomes))
                       for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            if kind == "burst" and merging:  # which merge lands first is the race's
                assert not any(outcomes[c] and not expected[c] for c in clients)
                assert any(outcomes.values()) or not any(expected.values())
            else:
                assert outcomes == expected, (kind, clients, model.events, merging)
            for c in clients:
                if outcomes[c]:
                    model.ids.update(batches[c])
                    acknowledged += batches[c]
                    model.events.append("append")
            if kind == "append" and outcomes[arg]:
                model.seen[arg] = len(model.events)
            if kind == "burst":  # each one's answer is some chain's head: reload to know
                for c in clients:
                    tables[c] = catalog(server).load_table(name)
                    model.seen[c] = len(model.events)
        else:  # overwrite, delete, schema: from a fresh read, so they land
            table = tables[arg] = catalog(server).load_table(name)
            if kind == "schema":
                with table.update_schema() as update:
                    update.add_column(f"c{len(model.events)}", StringType())
                model.events.append("schema")
            elif model.ids:
                cut = sorted(model.ids)[len(model.ids) // 2]
                gone = [i for i in model.ids if i < cut]
                if not gone:  # nothing to remove: the client only read the table
                    model.seen[arg] = len(model.events)
                    continue
                if kind == "overwrite":
                    added = model.fresh_ids(1)
                    table.overwrite(rows(*added), overwrite_filter=LessThan("id", cut))
                    model.ids.update(added)
                else:
                    table.delete(LessThan("id", cut))
                for i in gone:
                    del model.ids[i]
                model.events.append(kind)
            model.seen[arg] = len(model.events)
    final = catalog(server).load_table(name)
    read = Counter(final.scan().to_arrow()["id"].to_pylist())
    assert read == model.ids
    assert all(read[i] <= 1 for i in acknowledged)  # never twice
    if final.metadata.current_snapshot() is not None:
        assert duckdb_ids(final.metadata_location) == sorted(model.ids.elements())
    spark_read = spark.sql(f"SELECT id FROM {spark_catalog}.{name}").collect()
    assert Counter(r.id for r in spark_read) == model.ids
    _check_chain(final, server)


def _check_chain(table: Any, server: EmbeddedServer) -> None:
    """One valid chain, and every rebased commit a pure append over appends only."""
    snapshots = table.metadata.snapshots
    by_id = {s.snapshot_id: s for s in snapshots}
    assert [s.parent_snapshot_id for s in snapshots[1:]] == \
        [s.snapshot_id for s in snapshots[:-1]]
    assert [s.sequence_number for s in snapshots] == list(range(1, len(snapshots) + 1))
    for commit in log(server):
        props = commit["properties"]
        if "lakeversion.rebased" not in props:
            continue
        for snap_id, asserted in zip(props["lakeversion.rebased"].split(","),
                                     props["lakeversion.rebased-from"].split(",")):
            snap = by_id.get(int(snap_id))
            if snap is None:  # another example's table
                continue
            assert snap.summary.operation.value == "append"
            at = snap.parent_snapshot_id
            stop = None if asserted == "none" else int(asserted)
            while at != stop:
                assert at is not None
                assert by_id[at].summary.operation.value in ("append", "replace")
                at = by_id[at].parent_snapshot_id


def test_the_model_refuses_what_the_rules_refuse() -> None:
    """The model's own rule, on the cases named in the issue."""
    model = Model(events=["append", "schema", "append"], seen={0: 0, 1: 2, 2: 1})
    assert not model.append_lands(0)  # a schema change and then a snapshot
    assert model.append_lands(1)  # only an append since
    assert not model.append_lands(2)
    model = Model(events=["append", "schema"], seen={0: 0, 1: 1})
    assert not model.append_lands(0)  # stale (an append) and a schema change between
    assert model.append_lands(1)  # only the schema change: its ref did not move
    model = Model(events=["append", "delete"], seen={0: 0, 1: 2})
    assert not model.append_lands(0) and model.append_lands(1)
