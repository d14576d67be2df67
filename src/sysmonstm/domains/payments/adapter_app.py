"""The adapters' webhook apps: verify, normalize, spool, then answer.

Each request is handled in this order, and each step refuses with a JSON error
(``{"error": {"code", "message"}}``) before the next runs:

1. the raw body is read (at most ``payload.MAX_BODY`` bytes, else 413);
2. its signature is verified on those exact bytes (Stripe, PayPal) or the bearer token is
   checked (bank) — before any parsing: 400 ``invalid_signature`` / ``missing_signature`` /
   ``timestamp_out_of_tolerance`` / ``cert_url_not_allowed`` …, 401 for a bank token;
3. it is parsed and normalized into ``Transaction`` values (400 ``invalid_payload`` naming
   the field);
4. the transactions are written to the spool as one ``TransactionBatch`` and fsynced, one
   fsync shared by the requests in flight together (``spool_sync``) (503
   ``spool_unavailable`` when the disk refuses, so the processor retries);
5. only then 200 with ``{"received": [event ids], "sequence": n}`` (or ``{"ignored": type}``
   for an event type the hub does not take).

A refused request writes nothing. Nothing about a body reaches the log except event ids,
types and counts (card numbers never, personal fields never). The spool is the same
``Spool`` the metrics collector uses; ``adapter_run`` streams it to the hub.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sysmonstm.domains.payments import bank_adapter, paypal_adapter, stripe_adapter, stripe_sig
from sysmonstm.domains.payments.model import Transaction
from sysmonstm.domains.payments.payload import MAX_BODY, load_json
from sysmonstm.domains.payments.paypal_sig import PaypalVerifier
from sysmonstm.domains.payments.spool_sync import GroupSync
from sysmonstm.domains.payments.stripe_sig import SignatureError
from sysmonstm.errors import InvalidInputError
from sysmonstm.gateway.errors import error_response, install_error_handlers
from sysmonstm.transport.spool import Spool
from sysmonstm.v1 import payments_pb2 as pb
from sysmonstm.v1.common_pb2 import SourceIdentity

log = structlog.get_logger(__name__)

STRIPE_PATH, PAYPAL_PATH = "/webhooks/stripe", "/webhooks/paypal"
FEED_PATH, STATEMENTS_PATH = "/feed", "/statements"


def to_wire(tx: Transaction) -> pb.Transaction:
    """The wire form of a normalized transaction."""
    return pb.Transaction(
        event_id=tx.event_id,
        processor=tx.processor,
        transaction_id=tx.transaction_id,
        status=tx.status.value,
        amount_minor=tx.amount_minor,
        currency=tx.currency,
        time_unix_ms=tx.time_ms,
        card_fingerprint=tx.card_fingerprint,
        card_bin=tx.card_bin,
        card_last4=tx.card_last4,
        card_country=tx.card_country,
        country=tx.country,
        ip_country=tx.ip_country,
        ip=tx.ip,
        email=tx.email,
        customer_name=tx.customer_name,
        description=tx.description,
        metadata=dict(tx.metadata),
    )


MAX_MERGED = 500  # transactions per spooled batch when concurrent webhooks share one


@dataclass
class _Waiting:
    txs: Sequence[Transaction]
    sequence: int = 0  # the batch they went into, once appended


class TxSpool:
    """Writes transactions into a spool as ``TransactionBatch`` entries of one adapter.

    ``store`` (the webhook handlers) merges what concurrent requests bring: each round of
    ``GroupSync`` appends the transactions of every request waiting for it as one batch (at
    most ``MAX_MERGED``) and fsyncs once. One spool entry, one gRPC message, one pipeline
    admission and one ack then serve many webhooks. A batch the hub refuses whole (an event
    in a currency without a rate) is quarantined with the events merged beside it; they wait
    there with it (``rejected/``), nothing is lost."""

    def __init__(self, spool: Spool, machine_id: str, hostname: str = "") -> None:
        self.spool = spool
        self.source = SourceIdentity(machine_id=machine_id, hostname=hostname)
        self._waiting: list[_Waiting] = []
        self._syncs = GroupSync(spool, prepare=self._append_waiting)

    @property
    def waiting(self) -> int:
        """Requests whose transactions wait for the next round (for tests and logs)."""
        return len(self._waiting)

    def append(self, txs: Sequence[Transaction]) -> int:
        """Spool ``txs`` as one batch, not yet fsynced; its sequence."""
        batch = pb.TransactionBatch(
            source=self.source,
            sequence=self.spool.next_sequence(),
            transactions=[to_wire(tx) for tx in txs],
        )
        self.spool.append(batch.sequence, batch.SerializeToString())
        return batch.sequence

    def put(self, txs: Sequence[Transaction]) -> int:
        """Spool ``txs`` as one batch, durably (fsynced here); its sequence. ``OSError`` when
        the disk refuses (then nothing is acknowledged upstream)."""
        sequence = self.append(txs)
        self.spool.sync()
        return sequence

    async def store(self, txs: Sequence[Transaction]) -> int:
        """``put`` for a request handler: merged with the requests in flight beside it into
        one batch and one fsync, off the event loop; the sequence of the batch that holds
        ``txs``. ``OSError`` when the disk refuses."""
        waiting = _Waiting(txs)
        self._waiting.append(waiting)
        await self._syncs.durable()
        return waiting.sequence

    def _append_waiting(self) -> None:
        """A round begins: append what its requests brought, ``MAX_MERGED`` at most a batch."""
        waiting, self._waiting = self._waiting, []
        group: list[_Waiting] = []
        size = 0
        for w in [*waiting, None]:
            if group and (w is None or size + len(w.txs) > MAX_MERGED):
                sequence = self.append([tx for g in group for tx in g.txs])
                for g in group:
                    g.sequence = sequence
                group, size = [], 0
            if w is not None:
                group.append(w)
                size += len(w.txs)


@dataclass(frozen=True)
class AdapterContext:
    """What every adapter app needs: where to spool, the card key, the adapter's name."""

    sink: TxSpool
    card_key: bytes
    source: str  # the adapter instance, as the hub will know it


Handler = Callable[[Request, bytes], Awaitable[Sequence[Transaction] | str]]


def _app(ctx: AdapterContext, title: str) -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "pending": ctx.sink.spool.pending_count}

    return app


class _Unauthorized(Exception):  # noqa: N818 - an outcome of a request, not a bug
    pass


class _TooLarge(Exception):  # noqa: N818 - an outcome of a request, not a bug
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    body = await request.body()
    if len(body) > MAX_BODY:
        raise _TooLarge
    return body


def _refused(path: str, exc: Exception) -> JSONResponse:
    """The JSON error of a refused request (nothing was spooled)."""
    if isinstance(exc, _TooLarge):
        return error_response(413, "too_large", f"body over {MAX_BODY} bytes")
    if isinstance(exc, _Unauthorized):
        log.warning("feed refused", path=path, reason="unauthorized")
        response = error_response(401, "unauthorized", str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if isinstance(exc, SignatureError):
        status = 503 if exc.error_code in ("not_configured", "cert_unavailable") else 400
        log.warning("webhook refused", path=path, reason=exc.error_code)
        return error_response(status, exc.error_code, exc.reason)
    assert isinstance(exc, InvalidInputError)
    log.warning("webhook payload refused", path=path, reason=exc.reason[:200])
    return error_response(400, "invalid_payload", exc.reason)


async def _spool(ctx: AdapterContext, path: str, txs: Sequence[Transaction]) -> JSONResponse:
    if not txs:
        return JSONResponse({"received": [], "sequence": None})
    try:
        sequence = await ctx.sink.store(txs)
    except OSError as exc:
        log.error("cannot spool", path=path, error=exc.strerror)
        return error_response(503, "spool_unavailable", "cannot store the event; retry")
    ids = [tx.event_id for tx in txs]
    # debug, not info: a line per webhook costs a fifth of the adapter's CPU at load
    log.debug("spooled", path=path, events=len(ids), first=ids[0], sequence=sequence)
    return JSONResponse({"received": ids, "sequence": sequence})


def _route(app: FastAPI, path: str, ctx: AdapterContext, handle: Handler) -> None:
    """POST ``path``: read the raw body, let ``handle`` verify and normalize it, spool."""

    async def receive(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request)
            outcome = await handle(request, body)
        except (_TooLarge, _Unauthorized, InvalidInputError) as exc:
            return _refused(path, exc)
        if isinstance(outcome, str):
            return JSONResponse({"ignored": outcome})
        return await _spool(ctx, path, outcome)

    # a plain Starlette route: the raw request is all it reads, and FastAPI's parameter
    # handling would cost a third of the time a webhook takes (the error handlers still apply)
    app.add_route(path, receive, methods=["POST"])


def stripe_app(ctx: AdapterContext, secrets: Sequence[str], tolerance_s: float) -> FastAPI:
    """Stripe's webhook endpoint at ``STRIPE_PATH``."""
    app = _app(ctx, "sysmonstm Stripe adapter")

    async def handle(request: Request, body: bytes) -> Sequence[Transaction] | str:
        header = request.headers.get(stripe_sig.HEADER, "")
        stripe_sig.verify(body, header, secrets, tolerance_s)
        event = load_json(body, "Stripe event")
        tx = stripe_adapter.normalize(event, ctx.card_key, ctx.source)
        return [tx] if tx is not None else str(event.get("type", ""))[:100]

    _route(app, STRIPE_PATH, ctx, handle)
    return app


def paypal_app(ctx: AdapterContext, verifier: PaypalVerifier) -> FastAPI:
    """PayPal's webhook endpoint at ``PAYPAL_PATH``."""
    app = _app(ctx, "sysmonstm PayPal adapter")

    async def handle(request: Request, body: bytes) -> Sequence[Transaction] | str:
        await verifier.verify(body, request.headers)
        event = load_json(body, "PayPal event")
        tx = paypal_adapter.normalize(event, ctx.card_key, ctx.source)
        return [tx] if tx is not None else str(event.get("event_type", ""))[:100]

    _route(app, PAYPAL_PATH, ctx, handle)
    return app


def bank_app(ctx: AdapterContext, token: str) -> FastAPI:
    """The bank's JSON feed at ``FEED_PATH`` and camt.053/054 uploads at ``STATEMENTS_PATH``,
    both behind ``Authorization: Bearer <payments.bank.api_token>``."""
    app = _app(ctx, "sysmonstm bank adapter")
    expected = f"Bearer {token}".encode()

    def authorize(request: Request) -> None:
        given = request.headers.get("authorization", "").encode()
        if not token or not hmac.compare_digest(given, expected):
            raise _Unauthorized("a valid bearer token is required")

    async def feed(request: Request, body: bytes) -> Sequence[Transaction] | str:
        authorize(request)
        return bank_adapter.from_feed(load_json(body, "bank feed"), ctx.card_key, ctx.source)

    async def statements(request: Request, body: bytes) -> Sequence[Transaction] | str:
        authorize(request)
        return bank_adapter.from_camt(body, ctx.card_key, ctx.source)

    _route(app, FEED_PATH, ctx, feed)
    _route(app, STATEMENTS_PATH, ctx, statements)
    return app
