"""The UI tests' lake: a real server with principals, `db.t` keyed by `id` on a protected
`main` that needs one approval and passes a check, and helpers to sign in a browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from spark_lakeversion.auth import load_auth_config
from spark_lakeversion.model import CheckKind, CheckSpec
from spark_lakeversion.server.embedded import EmbeddedServer, start_embedded_server
from tests.server.access_helpers import write_auth_config

CHROMIUM = "/usr/bin/chromium"
#: root administers; ann reads and owns ann-*; bob and cy may merge; dan only reads
GRANTS = {
    "root": '[{ refs = "*", allow = ["admin"] }]',
    "ann": '[{ refs = "*", allow = ["read"] }, { refs = "ann-*", allow = ["admin"] }]',
    "bob": '[{ refs = "*", allow = ["read", "merge"] }]',
    "cy": '[{ refs = "*", allow = ["read", "merge"] }]',
    "dan": '[{ refs = "*", allow = ["read"] }]',
}
SCHEMA = Schema(NestedField(1, "id", LongType(), required=True),
                NestedField(2, "v", StringType(), required=False),
                identifier_field_ids=[1])
ARROW = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("v", pa.string())])
CHECK = "no_negative_ids"


@dataclass
class Site:
    server: EmbeddedServer
    root: Path
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def catalog(self, ref: str) -> Any:
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(f"c-{ref}", uri=self.server.iceberg_uri, warehouse=ref,
                           token=self.tokens["root"])

    def table(self, ref: str) -> Any:
        return self.catalog(ref).load_table("db.t")

    def rows(self, ids: list[int], label: str = "v") -> pa.Table:
        return pa.table({"id": ids, "v": [f"{label}{i}" for i in ids]}, schema=ARROW)

    def update(self, ref: str, row_id: int, value: str) -> None:
        """Rewrite one row (copy-on-write): an update of `v`."""
        self.table(ref).overwrite(pa.table({"id": [row_id], "v": [value]}, schema=ARROW),
                                  overwrite_filter=f"id == {row_id}")

    def branch(self, name: str, from_ref: str = "main") -> None:
        self.server.store.create_ref(name, from_ref=from_ref)

    def shots(self) -> Path:
        path = self.root / "screenshots"
        path.mkdir(exist_ok=True)
        return path


@contextmanager
def start_site(root: Path) -> Iterator[Site]:
    tokens = write_auth_config(root / "auth.toml", GRANTS)
    with start_embedded_server(f"sqlite:///{root / 'store.db'}", warehouse=str(root / "wh"),
                               auth=load_auth_config(root / "auth.toml")) as server:
        site = Site(server, root, tokens)
        main = site.catalog("main")
        main.create_namespace("db")
        main.create_table("db.t", schema=SCHEMA).append(site.rows(list(range(1, 61))))
        store = server.store
        store.add_check(CheckSpec("main", CHECK, CheckKind.SQL,
                                  "SELECT * FROM db.t WHERE id < 0"))
        store.protect_branch("main", require_approvals=1)
        yield site


def sign_in(browser: Any, site: Site, who: str, width: int = 1280) -> Any:
    """A new browser context signed in as `who`; its page."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  base_url=site.url)
    page = context.new_page()
    page.goto("/ui/login")
    page.fill("input[name=token]", site.tokens[who])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/refs$"))
    return page


def csrf_of(page: Any) -> str:
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))


def table_texts(page: Any, selector: str) -> list[list[str]]:
    """The cells of the rows of the table `selector` (body rows), as text."""
    return page.eval_on_selector_all(
        f"{selector} tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))")


def changed_cells(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} td.changed",
                                     "cells => cells.map(c => c.innerText.trim())")
