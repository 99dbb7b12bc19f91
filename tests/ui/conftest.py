"""The web UI's browser tests: one server and one headless Chromium per test module.

Chromium is Debian's (`/usr/bin/chromium`, installed by `make test` and `.ci/run`), driven
by Playwright for Python; Playwright never downloads a browser. Without it the tests fail
(also in CI), never skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.helpers import CHROMIUM, Site, start_site


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: make test installs it " \
        "(apt-get install chromium)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with start_site(tmp_path_factory.mktemp("ui")) as site:
        yield site
