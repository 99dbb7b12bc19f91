"""The surfaces `test_access_model.py` drives, each answering (error type or "ok",
message) and what it returned, and the warehouse site they share."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from spark_lakeversion.api import Catalog
from spark_lakeversion.errors import CODE_MARKER, ERRORS_BY_CODE, LakeVersionError
from spark_lakeversion.model import Content, ContentType, Key, Put
from tests.server.access_helpers import AuthedServer, catalog, client

LAKEVERSION = Path(sys.executable).parent / "lakeversion"
ROWS = pa.table({"id": pa.array([1, 2], pa.int64())})
State = tuple[dict[str, tuple[str, str]], set[str], set[Path]]


@dataclass
class Site:
    authed: AuthedServer
    warehouse: Path
    initial_main: str

    @property
    def store(self) -> Any:
        return self.authed.server.store

    def restore(self) -> None:
        """Every example starts from `main` at its first table state, alone, unprotected,
        with `main@{1}` its state before (the same in every example: draws repeat)."""
        for ref in self.store.list_refs():
            if ref.name != "main":
                self.store.delete_ref(ref.name, force=True)
        for name in self.store.protected_branches():
            self.store.unprotect_branch(name)
        self.store.assign_ref("main", "main~1", force=True)
        self.store.assign_ref("main", self.initial_main, force=True)

    def state(self) -> State:
        """What a refusal must leave as it was: every ref (type, head), the protections and
        the table metadata files the server wrote (data files are the client's)."""
        return ({name: (kind, head) for name, kind, head in self.authed.refs()},
                self.store.protected_branches(), set(self.warehouse.rglob("*.metadata.json")))


# ---- the surfaces: each returns (error type or "ok", message) ---------------------------
Outcome = tuple[str, str]
STATUS = {"Forbidden": 403, "ProtectedBranch": 403, "RefNotFound": 404, "AlreadyExists": 409,
          "UnmergedBranch": 409, "ConflictError": 409, "InvalidInput": 400}
EXIT = {"Forbidden": 6, "ProtectedBranch": 1, "RefNotFound": 2, "AlreadyExists": 1,
        "UnmergedBranch": 3, "ConflictError": 3, "InvalidInput": 1}


def api(site: Site, who: str, method: str, path: str, **kwargs: Any) -> tuple[Outcome, Any]:
    r = httpx.request(method, site.authed.server.api_url + path,
                      headers=site.authed.headers(who), timeout=60, **kwargs)
    if r.is_success:
        return ("ok", ""), r.json()
    error = r.json()["error"]
    assert r.status_code == STATUS.get(error["type"]), (r.status_code, error)
    return (error["type"], error["message"]), None


def python(site: Site, who: str, call: Callable[[Catalog], Any]) -> tuple[Outcome, Any]:
    with Catalog(client(site.authed, who)) as cat:
        try:
            return ("ok", ""), call(cat)
        except LakeVersionError as exc:
            return (type(exc).__name__, exc.message), None


def cli(site: Site, who: str, *args: str) -> tuple[Outcome, Any]:
    """The installed console script: one JSON document on stdout, success or not."""
    done = subprocess.run([str(LAKEVERSION), "--store", site.authed.server.url, "--output",
                           "json", *args], capture_output=True, text=True, timeout=120,
                          env={"LAKEVERSION_TOKEN": site.authed.tokens[who],
                               "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    document = json.loads(done.stdout)
    if done.returncode == 0:
        return ("ok", ""), document
    error = document["error"]
    assert done.returncode == EXIT.get(error["type"]), (done.returncode, error)
    return (error["type"], error["message"]), None


def iceberg(site: Site, who: str, ref: str, call: Callable[[Any], Any]) -> tuple[Outcome, Any]:
    """pyiceberg at `ref` (`warehouse`), so the config request reads `ref` itself."""
    from pyiceberg.exceptions import BadRequestError, ForbiddenError

    try:
        return ("ok", ""), call(catalog(site.authed, who, ref).load_table("db.t"))
    except ForbiddenError as exc:
        marker = CODE_MARKER.search(str(exc))  # our code, never the wording, names the type
        assert marker is not None, exc
        return (ERRORS_BY_CODE[marker.group(1)].__name__, str(exc)), None
    except BadRequestError as exc:  # /v1/config?warehouse= names no ref
        assert "must name a ref" in str(exc), exc
        return ("RefNotFound", str(exc)), None


def namespace_put() -> Put:
    name = f"n{uuid.uuid4().hex[:10]}"
    return Put(Key((name,)), Content(ContentType.NAMESPACE, uuid.uuid4().hex, {"properties": {}}))
