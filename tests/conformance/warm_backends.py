"""Warm tier backends under conformance. Opening a factory twice with the same temp dir
reaches the same data (the reopen test relies on it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from sysmonstm.store.model import Retention
from sysmonstm.store.warm import WarmTier
from sysmonstm.store.warm_sqlite import SqliteWarm

WarmFactory = Callable[
    [pytest.FixtureRequest, Path, Retention], AbstractAsyncContextManager[WarmTier]
]


@asynccontextmanager
async def sqlite_warm(
    _request: pytest.FixtureRequest, tmp: Path, retention: Retention
) -> AsyncIterator[WarmTier]:
    warm = SqliteWarm(f"sqlite:///{tmp / 'warm.db'}", retention=retention)
    await warm.open()
    try:
        yield warm
    finally:
        await warm.close()


WARMS: dict[str, WarmFactory] = {"sqlite": sqlite_warm}
