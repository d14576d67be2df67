"""Payment hub wire messages and one-stream exchanges with a real aggregator, for tests."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sysmonstm.config import Settings, load_settings
from sysmonstm.v1.common_pb2 import SourceIdentity
from sysmonstm.v1.payments_pb2 import Transaction, TransactionBatch
from tests.conftest import free_port
from tests.ingest_stream import Outcome
from tests.ingest_stream import exchange as exchange_on

METHOD = "/sysmonstm.v1.PaymentsIngest/Stream"
PII_KEY = base64.b64encode(bytes(range(32))).decode()
RATES = {"USD": 1.0, "EUR": 1.1, "JPY": 0.0067}
FINGERPRINT = "ab" * 32


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def hub_settings(data_dir: Path, **sections: Any) -> Settings:
    """An aggregator on a free port; payments with a PII key and a small rate table."""
    payments = {"pii_key": PII_KEY, "rates": RATES, **sections.pop("payments", {})}
    return load_settings(
        {
            "data_dir": str(data_dir),
            "aggregator": {"listen": f"127.0.0.1:{free_port()}"},
            "payments": payments,
            **sections,
        }
    )


def wire_tx(n: int, t_ms: int, **changes: Any) -> Transaction:
    """Stripe event ``evt_<n>`` of payment ``pi_<n>``: 10.00 USD captured, a US card in the US."""
    fields: dict[str, Any] = {
        "event_id": f"stripe:evt_{n}",
        "processor": "stripe",
        "transaction_id": f"pi_{n}",
        "status": "captured",
        "amount_minor": 1000,
        "currency": "USD",
        "time_unix_ms": t_ms,
        "card_fingerprint": FINGERPRINT,
        "card_bin": "424242",
        "card_last4": "4242",
        "card_country": "US",
        "country": "US",
        "ip_country": "US",
        "ip": "192.0.2.10",
        "email": f"payer{n}@example.com",
        "customer_name": f"Payer {n}",
    }
    fields.update(changes)
    return Transaction(**fields)


def batch(source: str, seq: int, txs: Iterable[Transaction]) -> TransactionBatch:
    return TransactionBatch(
        source=SourceIdentity(machine_id=source, hostname=source), sequence=seq, transactions=txs
    )


async def exchange(address: str, batches: Iterable[TransactionBatch | bytes]) -> Outcome:
    """Send ``batches`` on one stream, half-close, collect the acks and the final status."""
    return await exchange_on(address, METHOD, batches)


async def eventually(probe: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``await probe()`` is truthy (a functional deadline, not a speed claim)."""
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)
