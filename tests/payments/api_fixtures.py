"""The payment API tests' app: the gateway over a real ledger (SQLite, or a throwaway
PostgreSQL database) holding transactions decided by the default risk rules, and a tokens
file with one token per role."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sysmonstm.config import load_settings
from sysmonstm.domains.payments.cli_tokens import append_token
from sysmonstm.domains.payments.domain import DOMAIN as PAYMENTS
from sysmonstm.domains.payments.model import Status, Transaction
from sysmonstm.domains.payments.resources import ledger
from sysmonstm.domains.payments.risk import load_decider
from sysmonstm.domains.payments.tokens import Role
from sysmonstm.gateway import create_app
from sysmonstm.runtime import Core

TOKENS = {
    "viewer": "tok-viewer-0123456789",
    "analyst": "tok-analyst-0123456789",
    "auditor": "tok-auditor-0123456789",
    "admin": "tok-admin-0123456789",
}
USERS = {role: f"{role}-user" for role in TOKENS}
PII_KEY = base64.b64encode(bytes(range(32))).decode()
T0 = 1_780_000_000_000  # 2026-05-28T20:26:40Z
FP_SMALL = "a1" * 32
FP_LARGE = "b2" * 32


def tx(
    event: str, amount_minor: int, currency: str, base_minor: int, fp: str, t: int
) -> Transaction:
    return Transaction(
        event_id=f"stripe:{event}",
        processor="stripe",
        transaction_id=f"pi_{event}",
        status=Status.CAPTURED,
        amount_minor=amount_minor,
        currency=currency,
        time_ms=t,
        card_fingerprint=fp,
        card_bin="424242",
        card_last4="4242",
        card_country="US",
        country="US",
        ip_country="US",
        ip="203.0.113.7",
        email="jane.doe@example.com",
        customer_name="Jane Q Doe",
        description="order 17",
        metadata={"order": "17"},
        source="stripe-1",
        amount_base_minor=base_minor,
    )


SMALL = tx("evt_small", 10_000, "USD", 10_000, FP_SMALL, T0)  # 100.00 USD: approve
YEN = tx("evt_yen", 5_000, "JPY", 3_400, FP_SMALL, T0 + 1_000)  # 5,000 JPY: approve
LARGE = tx("evt_large", 1_200_000, "USD", 1_200_000, FP_LARGE, T0 + 2_000)  # review
LARGER = tx("evt_larger", 1_500_001, "USD", 1_500_001, FP_LARGE, T0 + 3_000)  # review
SEEDED = (SMALL, YEN, LARGE, LARGER)


def write_tokens(path: Path) -> Path:
    for role, token in TOKENS.items():
        append_token(path, USERS[role], Role(role), token)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def warm_url(request: pytest.FixtureRequest) -> str | None:
    """Where the ledger lives: SQLite under the data dir, or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        dsn: str = request.getfixturevalue("pg_dsn")
        return dsn
    return None


@pytest.fixture
async def core(warm_url: str | None, data_dir: Path) -> AsyncIterator[Core]:
    overrides: dict[str, Any] = {
        "data_dir": str(data_dir),
        "payments": {
            "tokens_file": str(write_tokens(data_dir / "tokens.toml")),
            "pii_key": PII_KEY,
        },
    }
    if warm_url:
        overrides["warm"] = {"url": warm_url}
    opened = await Core.open(load_settings(overrides), [PAYMENTS])
    try:
        await (await ledger(opened)).record(list(SEEDED), load_decider(), "hub")
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(core)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


async def call(
    client: httpx.AsyncClient, method: str, path: str, role: str | None, **kw: Any
) -> httpx.Response:
    headers = auth(role) if role else {}
    return await client.request(method, f"/api/v1/payments{path}", headers=headers, **kw)


async def ok(client: httpx.AsyncClient, method: str, path: str, role: str, **kw: Any) -> Any:
    response = await call(client, method, path, role, **kw)
    assert response.status_code == 200, response.text
    return response.json()
