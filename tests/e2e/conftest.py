"""Browser fixtures: Debian's Chromium driven by Playwright (it cannot download browsers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from sysmonstm.gateway.spa import STATIC_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def chromium() -> Path:
    """Missing is a failure, never a skip: ``make test`` installs it."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's browser with "
            "`apt-get install -y chromium` (`make test` does)"
        )
    return CHROMIUM


@pytest.fixture
def bundle() -> Path:
    if not (STATIC_DIR / "index.html").is_file():
        pytest.fail(f"the dashboard is not built into {STATIC_DIR}: run `make web`")
    return STATIC_DIR


@pytest.fixture
async def browser(chromium: Path, bundle: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
