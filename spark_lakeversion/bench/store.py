"""`lakeversion bench store`: the version store's cost model, measured in one run.

Figures (all from the same process, so ratios are meaningful on a noisy machine):
- branch creation p50 with 100 and with 100,000 tables (should not depend on the size);
- single-table commits per second on one branch, disjoint tables;
- merge of 100 changed tables in 1,000- and 100,000-table catalogs, both with the changed
  tables in one namespace (a pipeline's usual footprint) and scattered at random;
- p50 of reading one table's state at a ref.
"""

from __future__ import annotations

import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.formats.iceberg.codes import ICEBERG_TABLE
from spark_lakeversion.model import Content, Key, Put, RefType
from spark_lakeversion.versioning import VersionStore
from spark_lakeversion.wiring import open_store

_PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


def _table(i: int, version: int) -> Content:
    return Content(ICEBERG_TABLE, f"00000000-0000-0000-0000-{i:012d}", {
        "metadata_location": f"file:///warehouse/ns{i % 50}/t{i}/metadata/{version:05d}.json",
        "snapshot_id": version * 1000 + i, "schema_id": 0, "spec_id": 0, "sort_order_id": 0})


def _key(i: int) -> Key:
    return Key(("db", f"ns{i % 50:02d}", f"table_{i:06d}"))


def _p50_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


class _Backend:
    """Fresh stores on the chosen backend, cleaned up afterwards."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.tmp = tempfile.mkdtemp(prefix="lakeversion-bench-")
        self.schemas: list[str] = []

    def new_store(self) -> VersionStore:
        if self.backend == "sqlite":
            return open_store(f"sqlite:///{self.tmp}/{uuid.uuid4().hex}.db")
        if self.backend != "postgres":
            raise InvalidInput("backend must be sqlite or postgres")
        import psycopg

        schema = f"lvbench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_PG_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        return open_store("postgresql+psycopg://postgres@127.0.0.1:5432/test"
                          f"?options=-csearch_path%3D{schema}")

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.schemas:
            import psycopg

            with psycopg.connect(_PG_DSN, autocommit=True) as conn:
                for schema in self.schemas:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _seed(store: VersionStore, tables: int) -> float:
    """`tables` tables on main, in as few commits as the store's operation limit allows
    (the tree is history-independent: the same root as one big commit)."""
    started = time.perf_counter()
    step = store.limits.max_operations
    for start in range(0, tables, step):
        end = min(start + step, tables)
        store.commit("main", [Put(_key(i), _table(i, 1)) for i in range(start, end)],
                     message=f"seed tables {start}-{end - 1} of {tables}")
    return time.perf_counter() - started


def _branch_create_p50(store: VersionStore, repeats: int = 60) -> float:
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        store.create_ref(f"b{i}", RefType.BRANCH, "main")
        samples.append(time.perf_counter() - started)
    return _p50_ms(samples)


def _merge_once(store: VersionStore, tables: int, changed: list[int], round_: int) -> float:
    """Time of one three-way merge bringing `changed` tables from a fresh branch."""
    source = f"m{round_}-{uuid.uuid4().hex[:6]}"
    store.create_ref(source, RefType.BRANCH, "main")
    store.commit(source, [Put(_key(i), _table(i, 100 + round_)) for i in changed],
                 message=f"change {len(changed)} tables")
    # the target moves too, so this is a real three-way merge, not a fast-forward
    other = tables - 1 - round_ % 10
    store.commit("main", [Put(_key(other), _table(other, 200 + round_))], message="target moves")
    started = time.perf_counter()
    result = store.merge(source, "main")
    elapsed = time.perf_counter() - started
    assert result.successful and not result.fast_forward
    return elapsed


def _clustered(tables: int, count: int) -> list[int]:
    """`count` neighbouring tables (one namespace's worth), as one pipeline writes them."""
    in_key_order = sorted(range(tables - 10), key=_key)
    start = len(in_key_order) // 3
    return in_key_order[start:start + count]


def _scattered(tables: int, count: int, seed: int = 7) -> list[int]:
    return random.Random(seed).sample(range(tables - 10), count)


def _get_table_p50_us(store: VersionStore, tables: int, repeats: int = 2000) -> float:
    rnd = random.Random(3)
    samples = []
    for _ in range(repeats):
        key = _key(rnd.randrange(tables))
        started = time.perf_counter()
        store.get_content("main", key)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1_000_000, 1)


def _commits_per_s(store: VersionStore, commits: int = 2000) -> float:
    started = time.perf_counter()
    for i in range(commits):
        store.commit("main", [Put(_key(i % 1000), _table(i % 1000, 10 + i))],
                     message=f"commit {i}")
    return round(commits / (time.perf_counter() - started), 1)


def run(backend: str = "sqlite", large: int = 100_000, merge_rounds: int = 9,
        **_: Any) -> dict[str, Any]:
    if backend not in ("sqlite", "postgres"):
        raise InvalidInput("backend must be sqlite or postgres")
    env = _Backend(backend)
    try:
        figures: dict[str, Any] = {"backend": backend}

        def on_fresh(tables: int, fn: Callable[[VersionStore], Any]) -> Any:
            store = env.new_store()
            try:
                figures.setdefault("seed_s", {})[str(tables)] = round(_seed(store, tables), 3)
                return fn(store)
            finally:
                store.close()

        small, medium = 100, 1000
        figures["branch_create_p50_ms_100_tables"] = on_fresh(small, _branch_create_p50)
        stores = {size: env.new_store() for size in (medium, large)}
        try:
            for size, store in stores.items():
                figures.setdefault("seed_s", {})[str(size)] = round(_seed(store, size), 3)
            figures[f"branch_create_p50_ms_{large}_tables"] = _branch_create_p50(stores[large])
            # interleave the two catalogs round by round, so load drift hits both alike
            samples: dict[str, list[float]] = {}
            for round_ in range(merge_rounds):
                for size, store in stores.items():
                    for layout, changed in (("changed", _clustered(size, 100)),
                                            ("scattered", _scattered(size, 100, round_))):
                        samples.setdefault(f"merge_ms_100_{layout}_{size}_tables", []).append(
                            _merge_once(store, size, changed, round_))
            figures.update({name: _p50_ms(values) for name, values in sorted(samples.items())})
            figures["get_table_p50_us"] = _get_table_p50_us(stores[large], large)
        finally:
            for store in stores.values():
                store.close()
        figures["commits_per_s"] = on_fresh(medium, _commits_per_s)
        figures["ratios"] = {
            "branch_create_large_vs_small": round(
                figures[f"branch_create_p50_ms_{large}_tables"]
                / figures["branch_create_p50_ms_100_tables"], 2),
            "merge_large_vs_medium": round(
                figures[f"merge_ms_100_changed_{large}_tables"]
                / figures["merge_ms_100_changed_1000_tables"], 2),
            "merge_scattered_large_vs_medium": round(
                figures[f"merge_ms_100_scattered_{large}_tables"]
                / figures["merge_ms_100_scattered_1000_tables"], 2),
        }
        figures["targets"] = {
            "branch_create_large_vs_small<=1.5": figures["ratios"]["branch_create_large_vs_small"]
            <= 1.5,
            "merge_large_vs_medium<=1.5": figures["ratios"]["merge_large_vs_medium"] <= 1.5,
            # the commit-rate target is for the embedded default, a SQLite file
            "commits_per_s>=1000": figures["commits_per_s"] >= 1000 if backend == "sqlite"
            else None,
            "branch_create_p50_ms<=2": figures["branch_create_p50_ms_100_tables"] <= 2,
        }
        return figures
    finally:
        env.close()


if __name__ == "__main__":  # pragma: no cover - convenience
    import json

    print(json.dumps(run(), indent=2))
