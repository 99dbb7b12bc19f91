"""Concurrent writers on one branch, with threads and with processes, on every backend."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from spark_lakeversion.errors import ConflictError
from spark_lakeversion.model import Key, Put
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.wiring import open_store
from tests.helpers import make_store_url
from tests.versioning.helpers import table

WRITERS = 4
COMMITS_EACH = 15


def _disjoint_writer(url: str, worker: int, results: list[str] | None = None) -> list[str]:
    store = open_store(url)
    ids = []
    for i in range(COMMITS_EACH):
        commit = store.commit("main", [Put(Key.of(f"db.w{worker}"), table(f"w{worker}", str(i)))],
                              message=f"w{worker}-{i}")
        ids.append(commit.id)
    store.close()
    if results is not None:
        results.extend(ids)
    return ids


def _contending_writer(url: str, worker: int, barrier: Callable[[], object],
                       outcomes: list[tuple[int, int, str]]) -> None:
    """Each round both writers read the same head, then commit to one table from it."""
    store = open_store(url)
    for round_ in range(COMMITS_EACH):
        barrier()
        head = store.get_ref("main").head
        barrier()
        try:
            value = table("shared", f"{round_}-{worker}")
            c = store.commit("main", [Put(Key.of("db.shared"), value)],
                             message=f"r{round_}-w{worker}", expected_head=head)
            outcomes.append((round_, worker, c.id))
        except ConflictError:
            outcomes.append((round_, worker, "conflict"))
    store.close()


def _check_integrity(store: VersionStore) -> None:
    """Every ref points at an existing commit whose whole history and tree are readable."""
    for ref in store.list_refs():
        store.get_commit(ref.head)
        for commit in _all(store, ref.name):
            store.list_keys(commit.id)


def _all(store: VersionStore, ref: str) -> list:  # type: ignore[type-arg]
    return store.log(ref, limit=10_000).commits


@pytest.mark.parametrize("backend", ["sqlite-memory", "sqlite-file", "postgres"])
def test_threads_disjoint_tables_all_land(backend: str, tmp_path: Path) -> None:
    url = make_store_url(backend, tmp_path)
    shared = open_store(url) if backend == "sqlite-memory" else None
    results: list[str] = []
    if shared is not None:  # one in-memory database: writers share the store object

        def run(worker: int) -> None:
            for i in range(COMMITS_EACH):
                results.append(shared.commit(
                    "main", [Put(Key.of(f"db.w{worker}"), table(f"w{worker}", str(i)))],
                    message=f"w{worker}-{i}").id)

        threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    else:
        threads = [threading.Thread(target=_disjoint_writer, args=(url, w, results))
                   for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = shared or open_store(url)
    assert len(results) == WRITERS * COMMITS_EACH
    log_ids = {c.id for c in _all(store, "main")}
    assert set(results) <= log_ids  # no lost update
    for w in range(WRITERS):
        assert store.get_content("main", f"db.w{w}") == table(f"w{w}", str(COMMITS_EACH - 1))
    _check_integrity(store)


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"])
def test_processes_disjoint_tables_all_land(backend: str, tmp_path: Path) -> None:
    url = make_store_url(backend, tmp_path)
    open_store(url).close()  # initialise once
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(WRITERS) as pool:
        ids = pool.starmap(_disjoint_writer, [(url, w) for w in range(WRITERS)])
    store = open_store(url)
    flat = [i for chunk in ids for i in chunk]
    assert len(flat) == WRITERS * COMMITS_EACH
    assert set(flat) <= {c.id for c in _all(store, "main")}
    for w in range(WRITERS):
        assert store.get_content("main", f"db.w{w}") == table(f"w{w}", str(COMMITS_EACH - 1))
    _check_integrity(store)


def _assert_one_winner_per_round(store: VersionStore, outcomes: list[tuple[int, int, str]]) -> None:
    for round_ in range(COMMITS_EACH):
        results = [o for o in outcomes if o[0] == round_]
        winners = [o for o in results if o[2] != "conflict"]
        assert len(results) == 2 and len(winners) == 1, results
    winners = {o[2] for o in outcomes if o[2] != "conflict"}
    assert winners <= {c.id for c in _all(store, "main")}  # every acknowledged commit is there
    last_round = [o for o in outcomes if o[0] == COMMITS_EACH - 1 and o[2] != "conflict"][0]
    assert store.get_content("main", "db.shared") == table(
        "shared", f"{COMMITS_EACH - 1}-{last_round[1]}")
    _check_integrity(store)


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"])
def test_threads_same_table_one_wins_each_round(backend: str, tmp_path: Path) -> None:
    url = make_store_url(backend, tmp_path)
    open_store(url).close()
    barrier = threading.Barrier(2)
    outcomes: list[tuple[int, int, str]] = []
    threads = [threading.Thread(target=_contending_writer, args=(url, w, barrier.wait, outcomes))
               for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_one_winner_per_round(open_store(url), outcomes)


def _process_contender(url: str, worker: int, barrier: object, queue: object) -> None:
    outcomes: list[tuple[int, int, str]] = []
    _contending_writer(url, worker, barrier.wait, outcomes)  # type: ignore[attr-defined]
    queue.put(outcomes)  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["sqlite-file", "postgres"])
def test_processes_same_table_one_wins_each_round(backend: str, tmp_path: Path) -> None:
    url = make_store_url(backend, tmp_path)
    open_store(url).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_contender, args=(url, w, barrier, queue))
             for w in range(2)]
    for p in procs:
        p.start()
    outcomes = queue.get(timeout=120) + queue.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    _assert_one_winner_per_round(open_store(url), outcomes)
