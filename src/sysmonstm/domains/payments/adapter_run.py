"""Run one adapter: its webhook app on ``listen``, its spool streamed to the hub, and for the
bank the statement folder read once per file.

Secrets come only from settings (TOML, env ``SYSMONSTM_PAYMENTS__…``, or key files), are
checked before anything starts (``ConfigError`` naming the setting, never its value), and
never reach a log. The spool of each kind is ``<payments.spool_dir>/<kind>`` and its source
id ``<kind>-<machine id>``, so adapters on one machine keep separate sequences.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import structlog
from fastapi import FastAPI

from sysmonstm.config import Settings
from sysmonstm.domains.payments import adapter_app, bank_adapter
from sysmonstm.domains.payments.adapter_app import AdapterContext, TxSpool
from sysmonstm.domains.payments.card import load_card_key
from sysmonstm.domains.payments.paypal_sig import CertCache, PaypalVerifier
from sysmonstm.errors import ConfigError, InvalidInputError
from sysmonstm.gateway.server import serve_app
from sysmonstm.transport.sender import SenderOptions, StreamSender
from sysmonstm.transport.source import resolve_machine_id
from sysmonstm.transport.spool import Spool
from sysmonstm.transport.tls import channel_credentials

log = structlog.get_logger(__name__)

Kind = Literal["stripe", "paypal", "bank"]
KINDS: tuple[Kind, ...] = ("stripe", "paypal", "bank")
METHOD = "/sysmonstm.v1.PaymentsIngest/Stream"
WATCH_EVERY_S = 2.0


def spool_dir(settings: Settings, kind: Kind) -> Path:
    assert settings.payments.spool_dir is not None  # derived from data_dir by the settings
    return settings.payments.spool_dir / kind


def check(kind: Kind, settings: Settings) -> bytes:
    """The card key, once every secret ``kind`` needs is there; ``ConfigError`` naming the
    first missing setting otherwise (never a value)."""
    p = settings.payments
    key = load_card_key(p.card_key, p.card_key_file)
    if kind == "stripe" and not any(s.get_secret_value() for s in p.stripe.webhook_secrets):
        raise ConfigError("payments.stripe.webhook_secrets is empty")
    if kind == "paypal" and not p.paypal.webhook_id:
        raise ConfigError("payments.paypal.webhook_id is empty")
    if kind == "paypal" and not p.paypal.allowed_cert_hosts:
        raise ConfigError("payments.paypal.allowed_cert_hosts is empty")
    if kind == "bank" and not (p.bank.api_token and p.bank.api_token.get_secret_value()):
        raise ConfigError("payments.bank.api_token is empty")
    return key


def build_app(kind: Kind, settings: Settings, sink: TxSpool) -> FastAPI:
    """The webhook app of ``kind`` over ``sink``; ``ConfigError`` when a secret is missing."""
    p = settings.payments
    ctx = AdapterContext(sink, check(kind, settings), sink.source.machine_id)
    if kind == "stripe":
        secrets = [s.get_secret_value() for s in p.stripe.webhook_secrets]
        return adapter_app.stripe_app(ctx, [s for s in secrets if s], p.stripe.tolerance_s)
    if kind == "paypal":
        certs = CertCache(p.paypal.allowed_cert_hosts, p.paypal.cert_ca)
        return adapter_app.paypal_app(ctx, PaypalVerifier(p.paypal.webhook_id, certs))
    assert p.bank.api_token is not None  # check() made sure
    return adapter_app.bank_app(ctx, p.bank.api_token.get_secret_value())


def listen_of(settings: Settings, kind: Kind) -> str:
    p = settings.payments
    return {"stripe": p.stripe.listen, "paypal": p.paypal.listen, "bank": p.bank.listen}[kind]


def read_statements(folder: Path, ctx: AdapterContext) -> int:
    """Read each camt file (``*.xml``) in ``folder`` once: spooled, it moves to ``done/``;
    refused, to ``rejected/`` with a ``.reason`` beside it. The number of files read."""
    for sub in ("done", "rejected"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("*.xml"))
    for path in files:
        try:
            txs = bank_adapter.from_camt(path.read_bytes(), ctx.card_key, ctx.source)
        except InvalidInputError as exc:
            path.replace(folder / "rejected" / path.name)
            (folder / "rejected" / f"{path.name}.reason").write_text(exc.reason + "\n")
            log.warning("statement refused", file=path.name, reason=exc.reason[:200])
            continue
        if txs:
            ctx.sink.put(txs)
        path.replace(folder / "done" / path.name)
        log.info("statement read", file=path.name, entries=len(txs))
    return len(files)


async def watch_statements(folder: Path, ctx: AdapterContext, stop: asyncio.Event) -> None:
    """``read_statements`` every ``WATCH_EVERY_S`` until ``stop``."""
    while not stop.is_set():
        read_statements(folder, ctx)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_EVERY_S)


async def run_adapter(
    kind: Kind,
    settings: Settings,
    stop: asyncio.Event,
    *,
    machine_id: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``kind``'s webhooks and stream what they bring to ``payments.hub`` until
    ``stop``; then drain the spool briefly (what is left stays spooled for next time)."""
    p = settings.payments
    directory = spool_dir(settings, kind)
    ident = f"{kind}-{resolve_machine_id(machine_id, directory)}"[:128]
    spool = Spool(directory)
    try:
        sink = TxSpool(spool, ident, socket.gethostname())
        app = build_app(kind, settings, sink)
        tls = p.tls
        credentials = None
        if tls.ca or tls.cert:
            credentials = channel_credentials(tls.ca, tls.cert, tls.key)
        sender = StreamSender(
            spool, p.hub, METHOD, credentials=credentials, options=SenderOptions()
        )
        sending = asyncio.create_task(sender.run())
        extra: list[asyncio.Task[None]] = []
        serving_done = asyncio.Event()
        if kind == "bank" and p.bank.watch_dir is not None:
            ctx = AdapterContext(sink, check(kind, settings), ident)
            watching = watch_statements(p.bank.watch_dir, ctx, serving_done)
            extra.append(asyncio.create_task(watching))
        log.info("payment adapter started", kind=kind, source=ident, hub=list(p.hub))
        try:
            await serve_app(app, listen_of(settings, kind), stop, name=f"{kind} adapter",
                            on_ready=on_ready)  # fmt: skip
        finally:
            serving_done.set()
            await asyncio.gather(*extra, return_exceptions=True)
            sender.stop()
            await asyncio.gather(sending, return_exceptions=True)
    finally:
        spool.close()
        log.info("payment adapter stopped", kind=kind, pending=spool.pending_count)
