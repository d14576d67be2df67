"""The payment hub's per-process resources, shared by the aggregator and the gateway of a
process (``Core.shared``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sysmonstm.domains.payments.ledger_sql import SqlLedger
    from sysmonstm.runtime import Core

LEDGER = "payments.ledger"


async def ledger(core: Core) -> SqlLedger:
    """The ledger of this process, opened on first use in the database the warm tier's URL
    names, personal fields sealed with ``payments.pii_key`` (not kept without one); closed
    with the Core. Every caller in one process gets the same one."""

    def make(url: str) -> SqlLedger:
        from sysmonstm.domains.payments.ledgers import open_ledger
        from sysmonstm.domains.payments.pii import cipher_for

        return open_ledger(url, cipher_for(core.settings.payments))

    return await core.warm_store(LEDGER, make)
