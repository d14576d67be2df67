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

    async def opener() -> IntervalStore:
        from sysmonstm.domains.deskmeter.stores import open_interval_store

        store = open_interval_store(core.settings.warm.url)
        try:
            await store.open()
        except BaseException:
            await store.close()  # what did open (a pool, a thread) must not leak
            raise
        return store

    return await core.shared(INTERVAL_STORE, opener)
