"""Group commit (issue 24): appends to one table that arrive while a commit is in flight
are committed together, each client answered on its own."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from spark_lakeversion.formats.iceberg.catalog.group import GroupCommits, Member
from tests.contention.helpers import NO_RETRY, catalog, ids, log, new_table, rows, served


class _Runs:
    """A `run` for GroupCommits: records each batch, fails requests named 'bad'."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.hold = hold
        self.entered = threading.Event()

    def __call__(self, batch: list[Member[str, str]]) -> None:
        self.batches.append([m.request for m in batch])
        self.entered.set()
        if self.hold is not None and batch[0].request == "first":
            self.hold.wait(10)  # the commit in flight
        for m in batch:
            if m.request.startswith("bad"):
                m.fail(ValueError(m.request))
            else:
                m.succeed(f"ok {m.request}")


def _submit_all(groups: GroupCommits[str, str], names: list[str], run: _Runs,
                answers: dict[str, str]) -> list[threading.Thread]:
    def one(name: str) -> None:
        try:
            answers[name] = groups.submit("lane", name, run)
        except ValueError as exc:
            answers[name] = f"error {exc}"

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
        time.sleep(0.02)  # queued in this order
    return threads


def test_requests_queued_behind_a_commit_run_as_one_batch_each_answered() -> None:
    hold = threading.Event()
    run, answers = _Runs(hold), {}
    groups: GroupCommits[str, str] = GroupCommits(max_members=3, max_wait_s=30)
    first = _submit_all(groups, ["first"], run, answers)
    assert run.entered.wait(5)
    rest = _submit_all(groups, ["a", "bad-b", "c", "d"], run, answers)
    hold.set()
    for t in first + rest:
        t.join(10)
    # bounded: at most 3 per batch; the failing member failed alone
    assert run.batches == [["first"], ["a", "bad-b", "c"], ["d"]]
    assert answers == {"first": "ok first", "a": "ok a", "bad-b": "error bad-b",
                       "c": "ok c", "d": "ok d"}


def test_a_queued_request_waits_at_most_max_wait_then_runs_alone() -> None:
    hold = threading.Event()
    run, answers = _Runs(hold), {}
    groups: GroupCommits[str, str] = GroupCommits(max_members=8, max_wait_s=0.2)
    first = _submit_all(groups, ["first"], run, answers)
    assert run.entered.wait(5)
    late = _submit_all(groups, ["late"], run, answers)
    late[0].join(5)
    assert answers == {"late": "ok late"}  # answered while the first is still held
    hold.set()
    first[0].join(5)
    assert run.batches == [["first"], ["late"]] and answers["first"] == "ok first"


def test_a_failing_run_answers_every_member_with_its_error() -> None:
    def broken(batch: list[Member[str, str]]) -> None:
        raise RuntimeError("store down")

    groups: GroupCommits[str, str] = GroupCommits(max_members=8, max_wait_s=1)
    with pytest.raises(RuntimeError, match="store down"):
        groups.submit("lane", "x", broken)
    assert groups.submit("lane", "y", _Runs()) == "ok y"  # the lane was released


def test_8_writers_on_one_table_all_land_once_without_a_409(tmp_path: Path) -> None:
    writers, appends = 8, 8
    with served(tmp_path) as server:
        new_table(server, properties=NO_RETRY)  # any 409 fails a writer
        errors: list[BaseException] = []

        def write(w: int) -> None:
            table = catalog(server).load_table("db.t")
            try:
                for n in range(appends):
                    table.append(rows(w * 1000 + n))  # stale after the first: rebased
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        expected = sorted(w * 1000 + n for w in range(writers) for n in range(appends))
        table = catalog(server).load_table("db.t")
        assert ids(table) == expected
        snapshots = table.metadata.snapshots
        assert len(snapshots) == writers * appends
        # a valid chain: each snapshot's parent is the one before, sequence numbers climb
        assert [s.parent_snapshot_id for s in snapshots[1:]] == \
            [s.snapshot_id for s in snapshots[:-1]]
        assert [s.sequence_number for s in snapshots] == list(range(1, len(snapshots) + 1))
        commits = [c for c in log(server) if c["properties"].get("iceberg.operation") == "append"]
        grouped = Counter(int(c["properties"].get("lakeversion.group-commit", 1))
                          for c in commits)
        assert sum(size * count for size, count in grouped.items()) == writers * appends
        assert max(grouped) > 1  # some appends were committed together


def test_a_commit_that_is_not_an_append_never_waits_behind_the_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While an append's commit is in flight (held here), a property change and an
    overwrite of the same table commit at once; the held append then meets the overwrite
    and answers 409, as it would have without the queue."""
    from pyiceberg.exceptions import CommitFailedException

    from spark_lakeversion.formats.iceberg.catalog.appends import AppendCommitter

    armed, hold, entered = threading.Event(), threading.Event(), threading.Event()
    original = AppendCommitter._run

    def held(self: AppendCommitter, members: list[Member]) -> None:  # type: ignore[type-arg]
        if armed.is_set() and not entered.is_set():
            entered.set()
            hold.wait(60)
        original(self, members)

    monkeypatch.setattr(AppendCommitter, "_run", held)
    outcome: list[BaseException | None] = []

    def append() -> None:
        try:
            catalog(server).load_table("db.t").append(rows(1))
            outcome.append(None)
        except CommitFailedException as exc:
            outcome.append(exc)

    with served(tmp_path) as server:
        new_table(server, properties=NO_RETRY).append(rows(0))  # the overwrite replaces it
        writer = threading.Thread(target=append)
        armed.set()
        writer.start()
        try:
            assert entered.wait(60)  # the append's lane is busy
            other = catalog(server).load_table("db.t")
            with other.transaction() as tx:
                tx.set_properties(owner="etl")
            other.overwrite(rows(7))
            assert not hold.is_set() and writer.is_alive()  # both landed meanwhile
        finally:
            hold.set()
            writer.join(60)
        assert len(outcome) == 1 and isinstance(outcome[0], CommitFailedException)
        assert "not rebased" in str(outcome[0])
        table = catalog(server).load_table("db.t")
        assert ids(table) == [7] and table.properties["owner"] == "etl"
