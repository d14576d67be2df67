"""The ``payments`` suite: webhook-to-decision latency and the highest sustained rate with
exactly-once intact, each beside ceilings measured in the same run.

- ``payments.receive`` (ceiling): signed Stripe webhooks into a bare uvicorn app
  (``bench.payments_sink``: read the raw body, verify the signature, parse, answer 200), from
  the load generator every other measurement here uses (``simulate.Simulator``, unpaced).
- ``payments.ledger`` (ceiling): ``Ledger.record`` into a fresh SQLite ledger, batches as
  the hub writes them, an approve-everything decider: the raw ledger insert rate (unique
  event id, decision, two audit links, outbox rows per event, one commit per batch).
- ``payments.latency``: the real path. ``sysmonstm up`` (aggregator with the payments
  pipeline, rules, gateway; SQLite warm tier) and ``sysmonstm payments adapter stripe`` as
  processes; the simulator posts signed Stripe webhooks (fraud patterns and retries mixed in)
  at a steady rate; a WebSocket subscriber on the gateway's ``/ws`` takes every
  ``risk.decision.*``. Latency is from the simulator's send (the adapter's receive: same
  machine, one clock) to the subscriber seeing the decision, first delivery of each event,
  after the run's first second (warm-up: connections, caches, the first batches).
- ``payments.sustained``: the same run at rising rates; a rate holds when the simulator kept
  its pace, decisions came back within ``P99_HELD_MS`` at p99 and all of them within the
  drain time, and exactly once held: ledger rows
  == distinct events sent == decisions in the ledger == decisions published, one each.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.model import Run
from bench.procs import PYTHON, SYSMONSTM, BenchError, Children, child_env, free_port
from sysmonstm.domains.payments.ledger import RiskView
from sysmonstm.domains.payments.model import Action, Decision, Status, Transaction
from sysmonstm.domains.payments.simulate import SimOptions, Simulator, Summary, Target
from sysmonstm.domains.payments.simulate_events import Mix

SECRET = "whsec_bench_payments"  # noqa: S105 - the benchmark's own throwaway secret
CARD_KEY = "bench-card-key-0123456789abcdef"
STRIPE_ONLY = Mix(processors=(1.0, 0.0, 0.0))
RATES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}  # the hub's rate table
DRAIN_S = 10.0  # after the last send, how long decisions may take to arrive
PACE_HELD = 0.95  # the simulator's achieved rate, at least this share of the target
LAG_HELD_S = 1.0  # and no send later than this behind its slot
P99_HELD_MS = 1000.0  # and decisions back within this at p99: no backlog building up
WARM_UP_S = 1.0  # latencies of events first sent in a run's first second are left out


@dataclass(frozen=True, slots=True)
class PaymentsOptions:
    receive_events: int = 6_000
    ledger_events: int = 20_000
    ledger_batch: int = 100
    steady_rate: float = 200.0  # about half of what a 2-core machine holds: headroom
    steady_seconds: float = 10.0
    ladder: tuple[float, ...] = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 800.0, 1_000.0)
    ladder_seconds: float = 6.0
    concurrency: int = 16

    def quick(self) -> PaymentsOptions:
        return replace(
            self,
            receive_events=1_500,
            ledger_events=4_000,
            steady_rate=200.0,
            steady_seconds=4.0,
            ladder=(100.0, 200.0),
            ladder_seconds=3.0,
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _until_up(url: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise BenchError(f"{url} did not answer within {within_s} s")


# -- ceilings --------------------------------------------------------------------------------


def receive_run(directory: Path, seed: int, opts: PaymentsOptions) -> Run:
    """Unpaced signed webhooks into the bare app; webhooks per second answered 200."""
    port = free_port()
    with Children(directory) as kids:
        args = [PYTHON, "-m", "bench.payments_sink", "--port", str(port), "--secret", SECRET]
        kids.start("payments-sink", args, child_env())
        url = f"http://127.0.0.1:{port}/webhooks/stripe"

        async def drive() -> Summary:
            await _wait_port(port)
            sim = Simulator(
                SimOptions(
                    rate=1e9,
                    count=opts.receive_events,
                    seed=seed,
                    mix=STRIPE_ONLY,
                    currencies=tuple(RATES),
                    concurrency=opts.concurrency,
                ),
                {"stripe": Target(url, stripe_secret=SECRET)},
            )
            return await sim.run()

        summary = asyncio.run(drive())
    if summary.statuses != Counter({200: opts.receive_events}):
        raise BenchError(f"the bare app did not take every webhook: {dict(summary.statuses)}")
    return Run(summary.rate, summary.total, summary.seconds)


async def _wait_port(port: int, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise BenchError(f"nothing listens on port {port} after {within_s} s")


async def _approve(tx: Transaction, view: RiskView) -> Decision:
    return Decision(tx.event_id, tx.transaction_id, Action.APPROVE, (), 0, "bench@0")


def ledger_run(directory: Path, seed: int, opts: PaymentsOptions) -> Run:
    """``Ledger.record`` of ``ledger_events`` new events in batches; events per second."""
    from sysmonstm.domains.payments.ledgers import open_ledger

    def tx(i: int) -> Transaction:
        return Transaction(
            event_id=f"stripe:evt_{seed}_{i:08d}",
            processor="stripe",
            transaction_id=f"pi_{seed}_{i:08d}",
            status=Status.CAPTURED,
            amount_minor=1000 + i % 5000,
            currency="USD",
            time_ms=int(time.time() * 1000),
            card_fingerprint=f"{i % 977:064x}",
            card_bin="42424242",
            card_last4="4242",
            card_country="US",
            country="US",
            amount_base_minor=1000 + i % 5000,
        )

    async def go() -> tuple[float, int]:
        ledger = open_ledger(f"sqlite:///{directory / 'ledger.db'}")
        await ledger.open()
        try:
            batches = [
                [tx(i) for i in range(a, min(a + opts.ledger_batch, opts.ledger_events))]
                for a in range(0, opts.ledger_events, opts.ledger_batch)
            ]
            start = time.perf_counter()
            for batch in batches:
                await ledger.record(batch, _approve, "bench")
            seconds = time.perf_counter() - start
            stored = len(await ledger.seen([t.event_id for b in batches for t in b]))
        finally:
            await ledger.close()
        return seconds, stored

    seconds, stored = asyncio.run(go())
    if stored != opts.ledger_events:
        raise BenchError(f"ledger holds {stored} of {opts.ledger_events} events")
    return Run(stored / seconds, stored, seconds, {"batch": opts.ledger_batch})


# -- the real path ---------------------------------------------------------------------------


@dataclass
class PathResult:
    """One paced run through adapter → hub → bus, and what the ledger says afterwards."""

    rate: float  # the target
    summary: Summary
    latencies_ms: list[float]
    published: Counter[str]  # event id -> risk.decision.* envelopes seen
    ledger_rows: int
    ledger_decisions: int
    drained: bool

    @property
    def exactly_once(self) -> bool:
        distinct = len(self.summary.accepted)
        return (
            self.ledger_rows == distinct
            and self.ledger_decisions == distinct
            and set(self.published) == self.summary.accepted
            and all(n == 1 for n in self.published.values())
        )

    @property
    def held(self) -> bool:
        return (
            self.drained
            and self.exactly_once
            and self.summary.rate >= PACE_HELD * self.rate
            and self.summary.lag_max_s <= LAG_HELD_S
            and set(self.summary.statuses) == {200}
            and bool(self.latencies_ms)
            and percentile(self.latencies_ms, 0.99) <= P99_HELD_MS
        )

    def facts(self) -> dict[str, object]:
        return {
            "target_rate": self.rate,
            "achieved_rate": self.summary.rate,
            "webhooks": self.summary.total,
            "distinct_events": len(self.summary.keys),
            "retries": self.summary.total - len(self.summary.keys),
            "ledger_rows": self.ledger_rows,
            "ledger_decisions": self.ledger_decisions,
            "decisions_published": sum(self.published.values()),
            "exactly_once": "yes" if self.exactly_once else "no",
            "lag_max_ms": self.summary.lag_max_s * 1000,
            "p50_ms": percentile(self.latencies_ms, 0.5) if self.latencies_ms else None,
            "p99_ms": percentile(self.latencies_ms, 0.99) if self.latencies_ms else None,
            "held": "yes" if self.held else "no",
        }


def hub_env(data: Path, grpc_port: int, adapter_port: int) -> dict[str, str]:
    return child_env(
        SYSMONSTM_DATA_DIR=str(data),
        SYSMONSTM_CONFIG=str(data / "absent.toml"),
        SYSMONSTM_LOG__FORMAT="json",
        SYSMONSTM_PAYMENTS__CARD_KEY=CARD_KEY,
        SYSMONSTM_PAYMENTS__RATES=json.dumps(RATES),
        SYSMONSTM_PAYMENTS__HUB=json.dumps([f"127.0.0.1:{grpc_port}"]),
        SYSMONSTM_PAYMENTS__STRIPE__LISTEN=f"127.0.0.1:{adapter_port}",
        SYSMONSTM_PAYMENTS__STRIPE__WEBHOOK_SECRETS=json.dumps([SECRET]),
    )


async def _subscribe(
    url: str, seen: dict[str, int], counts: Counter[str], ready: asyncio.Event
) -> None:
    """Take every ``risk.decision.*`` envelope from the gateway's ``/ws``: the arrival time
    (ns) of each event's first decision, and how many arrived per event."""
    import websockets

    async with websockets.connect(url, max_queue=None) as ws:
        await ws.send(json.dumps({"subscribe": ["risk.decision.>"]}))
        while True:
            message = json.loads(await ws.recv())
            now = time.time_ns()
            if "ok" in message:
                ready.set()
                continue
            if "dropped" in message:
                raise BenchError(f"the gateway dropped {message['dropped']} decisions")
            event_id = message.get("payload", {}).get("event_id")
            if isinstance(event_id, str):
                counts[event_id] += 1
                seen.setdefault(event_id, now)


def _ledger_counts(db: Path) -> tuple[int, int]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT count(*) FROM pay_transactions").fetchone()[0]
        decisions = conn.execute("SELECT count(*) FROM pay_decisions").fetchone()[0]
    finally:
        conn.close()
    return int(rows), int(decisions)


def path_run(
    directory: Path, seed: int, rate: float, seconds: float, opts: PaymentsOptions
) -> PathResult:
    """``sysmonstm up`` and the Stripe adapter as processes, the simulator and a WebSocket
    subscriber here; afterwards the ledger's SQLite file is read."""
    data = directory / "data"
    data.mkdir()
    grpc_port, http_port, adapter_port = free_port(), free_port(), free_port()
    env = hub_env(data, grpc_port, adapter_port)
    sent: dict[str, int] = {}
    arrived: dict[str, int] = {}
    counts: Counter[str] = Counter()

    def on_sent(event: object, sent_ns: int, _answered: int, status: int) -> None:
        key = getattr(event, "key", "")
        if status == 200:
            sent.setdefault(key, sent_ns)

    with Children(directory) as kids:
        hub = kids.start(
            "up",
            [
                SYSMONSTM,
                "up",
                "--no-collect",
                "--http",
                f"127.0.0.1:{http_port}",
                "--grpc",
                f"127.0.0.1:{grpc_port}",
            ],
            env,
        )
        adapter = kids.start("adapter", [SYSMONSTM, "payments", "adapter", "stripe"], env)

        async def drive() -> tuple[Summary, bool]:
            await _until_up(f"http://127.0.0.1:{http_port}/healthz")
            await _until_up(f"http://127.0.0.1:{adapter_port}/healthz")
            ready = asyncio.Event()
            sub = asyncio.create_task(
                _subscribe(f"ws://127.0.0.1:{http_port}/ws", arrived, counts, ready)
            )
            await asyncio.wait_for(ready.wait(), 10)
            sim = Simulator(
                SimOptions(
                    rate=rate,
                    duration_s=seconds,
                    seed=seed,
                    mix=STRIPE_ONLY,
                    currencies=tuple(RATES),
                    concurrency=opts.concurrency,
                ),
                {
                    "stripe": Target(
                        f"http://127.0.0.1:{adapter_port}/webhooks/stripe", stripe_secret=SECRET
                    )
                },
                on_sent=on_sent,
            )
            summary = await sim.run()
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and not summary.accepted <= arrived.keys():
                if sub.done():
                    sub.result()
                await asyncio.sleep(0.05)
            drained = summary.accepted <= arrived.keys()
            await asyncio.sleep(0.3)  # a repeat published late would show now
            sub.cancel()
            return summary, drained

        try:
            summary, drained = asyncio.run(drive())
        except BenchError as exc:
            logs = "\n".join(f"{c.name}: {c.text()[-1500:]}" for c in (hub, adapter))
            raise BenchError(f"{exc}\n{logs}") from exc
    rows, decisions = _ledger_counts(data / "warm.db")
    # the first 200 of each event (Stripe's first delivery) to its decision on the bus, once
    # connections, caches and the first batches are warm
    first = min(sent.values(), default=0)
    latencies = [
        (arrived[k] - t) / 1e6
        for k, t in sent.items()
        if k in arrived and t >= first + WARM_UP_S * 1e9
    ]
    return PathResult(rate, summary, latencies, counts, rows, decisions, drained)


def latency_run(directory: Path, seed: int, opts: PaymentsOptions) -> Run:
    """p50 webhook-to-decision latency at the steady rate (p99 and the checks as facts)."""
    result = path_run(directory, seed, opts.steady_rate, opts.steady_seconds, opts)
    if not result.exactly_once:
        raise BenchError(f"exactly once did not hold at {opts.steady_rate:g}/s: {result.facts()}")
    if not result.latencies_ms:
        raise BenchError("no decision arrived")
    p50 = statistics.median(result.latencies_ms)
    return Run(p50, len(result.latencies_ms), result.summary.seconds, result.facts())


def sustained_run(directory: Path, seed: int, opts: PaymentsOptions) -> Run:
    """The ladder of rates, lowest first, until one does not hold; the highest that held."""
    best: PathResult | None = None
    tried: list[str] = []
    for i, rate in enumerate(opts.ladder):
        step = directory / f"rate-{i}"
        step.mkdir()
        result = path_run(step, seed, rate, opts.ladder_seconds, opts)
        f = result.facts()
        tried.append(
            f"{rate:g}/s: {'held' if result.held else 'not held'} "
            f"(sent {f['achieved_rate']:.0f}/s, "
            f"p99 {f['p99_ms'] or 0:.0f} ms, exactly once {'yes' if result.exactly_once else 'NO'})"
        )
        if not result.held:
            break
        best = result
    if best is None:  # a figure of 0 with the reason, rather than no figure
        return Run(0.0, 0, 0.0, {"ladder": "; ".join(tried), "held": "no"})
    facts = best.facts() | {"ladder": "; ".join(tried)}
    return Run(best.summary.rate, best.summary.total, best.summary.seconds, facts)
