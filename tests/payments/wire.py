"""Payment hub wire messages and one-stream exchanges with a real aggregator, for tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from sysmonstm.config import Settings, load_settings
from sysmonstm.v1.common_pb2 import Ack, SourceIdentity
from sysmonstm.v1.payments_pb2 import Transaction, TransactionBatch
from tests.conftest import free_port

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


@dataclass
class Outcome:
    acks: list[int]
    code: grpc.StatusCode
    details: str
    trailing: dict[str, str]


async def exchange(address: str, batches: Iterable[TransactionBatch | bytes]) -> Outcome:
    """Send ``batches`` on one stream, half-close, collect the acks and the final status."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            METHOD, request_serializer=lambda b: b, response_deserializer=Ack.FromString
        )()

        async def writer() -> None:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                for b in batches:
                    await call.write(b if isinstance(b, bytes) else b.SerializeToString())
                await call.done_writing()

        sending = asyncio.create_task(writer())
        acks: list[int] = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            while (ack := await call.read()) is not grpc.aio.EOF:
                assert isinstance(ack, Ack)
                acks.append(ack.stored_through)
        await sending
        trailing = {str(k): str(v) for k, v in (await call.trailing_metadata() or ())}
        return Outcome(acks, await call.code(), await call.details() or "", trailing)


async def eventually(probe: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``await probe()`` is truthy (a functional deadline, not a speed claim)."""
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)
