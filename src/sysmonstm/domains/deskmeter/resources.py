"""Deskmeter's per-process resources, shared by the aggregator and the gateway of a process."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sysmonstm.domains.deskmeter.store import IntervalStore
    from sysmonstm.runtime import Core

INTERVAL_STORE = "deskmeter.intervals"


async def interval_store(core: Core) -> IntervalStore:
    """The interval store of this process, opened on first use, in the database the warm
    tier's URL names; closed with the Core. Every caller in one process gets the same one."""

    def make(url: str) -> IntervalStore:
        from sysmonstm.domains.deskmeter.stores import open_interval_store

        return open_interval_store(url)

    return await core.warm_store(INTERVAL_STORE, make)
