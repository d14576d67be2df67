"""``sysmonstm payments simulate``: signed webhooks for the three processors at a steady rate,
with fraud patterns mixed in (``simulate_events``), sent to the adapters over HTTP.

Pacing: event ``i`` is due at ``start + i / rate``; the sender sleeps until then, or sends at
once when behind (the lag is reported, never hidden by a lower rate). ``concurrency``
workers, each on its own kept-alive connection, send one request at a time; when all are
busy, the next send waits for one (so a slow hub shows as lag, not as unbounded memory).

Signing happens at send time, as the processors do it: Stripe's ``Stripe-Signature`` with the
adapter's webhook secret (``stripe_sig.sign``); PayPal's transmission signature (RSA-SHA256
over ``id|time|webhook_id|crc32(body)``) with the simulator's key, whose certificate the
PayPal adapter is configured to fetch from an allowed host; the bank feed's bearer token.

The summary never holds a card number; ``Summary.pans`` does, for the no-PAN scans, and is
not part of its text.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from sysmonstm.domains.payments import stripe_sig
from sysmonstm.domains.payments.paypal_sig import PaypalSigner
from sysmonstm.domains.payments.simulate_events import PROCESSORS, EventPlan, Mix, SimEvent
from sysmonstm.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Target:
    """Where one processor's webhooks go and how they are signed."""

    url: str
    stripe_secret: str = field(default="", repr=False)  # Stripe: the adapter's webhook secret
    paypal: PaypalSigner | None = None  # PayPal: the simulator's signing identity
    paypal_webhook_id: str = ""  # PayPal: the webhook id the adapter is configured with
    bank_token: str = field(default="", repr=False)  # bank: the JSON feed's bearer token

    def headers(self, event: SimEvent) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if event.processor == "stripe":
            headers[stripe_sig.HEADER] = stripe_sig.sign(event.body, self.stripe_secret)
        elif event.processor == "paypal" and self.paypal is not None:
            headers |= self.paypal.headers(event.body, self.paypal_webhook_id)
        elif event.processor == "bank" and self.bank_token:
            headers["Authorization"] = f"Bearer {self.bank_token}"
        return headers


@dataclass(frozen=True, slots=True)
class SimOptions:
    rate: float  # webhook deliveries per second, all processors together
    duration_s: float | None = None  # stop after this long (None: until stopped)
    count: int | None = None  # stop after this many deliveries (retries included)
    seed: int = 0
    concurrency: int = 16
    mix: Mix = field(default_factory=Mix)
    currencies: tuple[str, ...] = ("USD", "EUR", "GBP", "JPY")
    timeout_s: float = 10.0


SentFn = Callable[[SimEvent, int, int, int], None]  # event, sent ns, answered ns, status


@dataclass
class Summary:
    """What a run sent and how the adapters answered."""

    sent: collections.Counter[str] = field(default_factory=collections.Counter)  # processor
    patterns: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)  # 0: error
    accepted: set[str] = field(default_factory=set)  # event keys answered 2xx at least once
    keys: set[str] = field(default_factory=set)  # every distinct event key sent
    # card numbers the sloppy payloads carried (kept out of repr: a repr may reach a log)
    pans: set[str] = field(default_factory=set, repr=False)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    lag_max_s: float = 0.0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def rate(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """The summary as text (no card numbers)."""
        by = ", ".join(f"{p} {n}" for p, n in sorted(self.sent.items()))
        pats = ", ".join(f"{p} {n}" for p, n in sorted(self.patterns.items()))
        codes = ", ".join(
            f"{c or 'error'}: {n}" for c, n in sorted(self.statuses.items(), key=lambda x: x[0])
        )
        out = [
            f"sent {self.total} webhooks in {self.seconds:.1f} s ({self.rate:.0f}/s): {by}",
            f"patterns: {pats}",
            f"answers: {codes}",
            f"distinct events {len(self.keys)}, accepted {len(self.accepted)}, "
            f"card numbers planted {len(self.pans)}, largest lag {self.lag_max_s * 1000:.0f} ms",
        ]
        out += [f"error: {e} x{n}" for e, n in self.errors.most_common(5)]
        return out


def _plan_mix(mix: Mix, targets: dict[str, Target]) -> Mix:
    """``mix`` with no share for processors that have no target."""
    stripe, paypal, bank = (
        share if p in targets else 0.0 for p, share in zip(PROCESSORS, mix.processors, strict=True)
    )
    shares = (stripe, paypal, bank)
    if not any(shares):
        raise ConfigError("the simulator needs at least one of --stripe, --paypal, --bank")
    return dataclasses.replace(mix, processors=shares)


class Simulator:
    """One run of the simulator (see the module doc)."""

    def __init__(
        self,
        opts: SimOptions,
        targets: dict[str, Target],
        *,
        on_sent: SentFn | None = None,
    ) -> None:
        if opts.rate <= 0:
            raise ConfigError("--rate must be above 0")
        self.opts = opts
        self.targets = targets
        self.plan = EventPlan(
            seed=opts.seed, mix=_plan_mix(opts.mix, targets), currencies=opts.currencies
        )
        self.summary = Summary()
        self._on_sent = on_sent

    async def run(self, stop: asyncio.Event | None = None) -> Summary:
        """Send until the duration or count is reached, or ``stop`` is set; wait for the
        answers in flight; the summary."""
        o, s = self.opts, self.summary
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[SimEvent | None] = asyncio.Queue(maxsize=o.concurrency)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(o.concurrency)]
        start = loop.time()
        try:
            i = 0
            while not stop.is_set():
                if o.count is not None and i >= o.count:
                    break
                due = start + i / o.rate
                if o.duration_s is not None and due - start >= o.duration_s:
                    break
                delay = due - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
                await queue.put(next(self.plan))  # waits while every worker is busy
                s.lag_max_s = max(s.lag_max_s, loop.time() - due)
                i += 1
        finally:
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
            s.seconds = loop.time() - start
        return s

    async def _worker(self, queue: asyncio.Queue[SimEvent | None]) -> None:
        """One connection, kept alive, one request at a time (httpx's shared pool costs
        quadratic time in its size, so concurrency is many small clients instead)."""
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(timeout=self.opts.timeout_s, limits=limits) as client:
            while (event := await queue.get()) is not None:
                await self._send(client, event)

    async def _send(self, client: httpx.AsyncClient, event: SimEvent) -> None:
        s = self.summary
        target = self.targets[event.processor]
        s.sent[event.processor] += 1
        s.patterns[event.pattern.value] += 1
        s.keys.add(event.key)
        if event.pan:
            s.pans.add(event.pan)
        sent_ns = time.time_ns()
        try:
            response = await client.post(
                target.url, content=event.body, headers=target.headers(event)
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            status = 0
            s.errors[f"{event.processor}: {type(exc).__name__}"] += 1
        answered_ns = time.time_ns()
        s.statuses[status] += 1
        if 200 <= status < 300:
            s.accepted.add(event.key)
        elif status:
            s.errors[f"{event.processor}: HTTP {status}"] += 1
        if self._on_sent is not None:
            self._on_sent(event, sent_ns, answered_ns, status)
