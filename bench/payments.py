"""The ``payments`` suite: webhook-to-decision latency and the highest sustained rate with
exactly-once intact, each beside ceilings measured in the same run.

- ``payments.receive`` (ceiling): signed Stripe webhooks into a bare uvicorn app
  (``bench.payments_sink``: read the raw body, verify the signature, parse, answer 200), from
  the load generator every other measurement here uses (``bench.payments_load``, unpaced).
- ``payments.ledger`` (ceiling): ``Ledger.record`` into a fresh SQLite ledger, batches as
  the hub writes them, an approve-everything decider: the raw ledger insert rate (unique
  event id, decision, two audit links, outbox rows per event, one transaction and one fsync
  per batch, as the hub's group commit does).
- ``payments.latency``: the real path. ``sysmonstm up`` (aggregator with the payments
  pipeline, rules, gateway; SQLite warm tier) and ``sysmonstm payments adapter stripe`` as
  processes; the load generator, a process of its own, posts signed Stripe webhooks (fraud
  patterns and retries mixed in) at a steady rate; a WebSocket subscriber here, on the
  gateway's ``/ws``, takes every ``risk.decision.*``. Latency is from the generator's send
  (the adapter's receive: same machine, one clock) to the subscriber seeing the decision,
  first delivery of each event, after the run's first second (warm-up: connections, caches,
  the first batches). Each process's CPU while sending is kept as a fact.
- ``payments.sustained``: the same run at rising rates (``Ladder``); a rate holds when the
  generator kept its pace, decisions came back within ``P99_HELD_MS`` at p99 and all of them
  within the drain time, the gateway dropped none, and exactly once held: ledger rows
  == distinct events sent == decisions in the ledger == decisions published, one each.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import psutil

from bench.loadgen import cpu_seconds
from bench.model import Run
from bench.procs import PYTHON, SYSMONSTM, BenchError, Child, Children, child_env, free_port
from sysmonstm.domains.payments.ledger import RiskView
from sysmonstm.domains.payments.model import Action, Decision, Status, Transaction
from sysmonstm.domains.payments.simulate import Summary

SECRET = "whsec_bench_payments"  # noqa: S105 - the benchmark's own throwaway secret
CARD_KEY = "bench-card-key-0123456789abcdef"
RATES = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}  # the hub's rate table
DRAIN_S = 10.0  # after the last send, how long decisions may take to arrive
PACE_HELD = 0.95  # the simulator's achieved rate, at least this share of the target
LAG_HELD_S = 1.0  # and no send later than this behind its slot
P99_HELD_MS = 1000.0  # and decisions back within this at p99: no backlog building up
WARM_UP_S = 1.0  # latencies of events first sent in a run's first second are left out


@dataclass(frozen=True, slots=True)
class PaymentsOptions:
    receive_events: int = 4_000
    ledger_events: int = 6_000
    ledger_batch: int = 100
    steady_rate: float = 1_000.0  # the target's rate: p99 webhook to decision within 20 ms
    steady_seconds: float = 4.0
    ladder: tuple[float, ...] = (500.0, 750.0, 1_000.0, 1_500.0, 2_000.0, 3_000.0, 5_000.0)
    ladder_seconds: float = 4.0  # = steady_seconds: the ladder's step at that rate is reused
    ladder_steps: int = 3  # new hubs per ladder run at most (the suite's time budget)
    connections: int = 16

    def quick(self) -> PaymentsOptions:
        return replace(
            self,
            receive_events=1_500,
            ledger_events=2_000,
            steady_rate=200.0,
            steady_seconds=3.0,
            ladder=(200.0, 400.0),
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


def _loadgen(
    kids: Children, directory: Path, url: str, rate: float, count: int, seed: int, conns: int
) -> tuple[Child, Path, Path]:
    """Start ``bench.payments_load`` building its requests; its child, go file, result file."""
    go, out = directory / "go", directory / "load.json"
    args = [PYTHON, "-m", "bench.payments_load", "--url", url, "--secret", SECRET]
    args += ["--rate", str(rate), "--count", str(count), "--seed", str(seed)]
    args += ["--connections", str(conns), "--go", str(go), "--out", str(out)]
    return kids.start("load", args, child_env()), go, out


@dataclass(frozen=True, slots=True)
class Load:
    """What the load generator sent and how it was answered (``bench.payments_load``)."""

    summary: Summary
    sent_ns: dict[str, int]  # event key -> send of its first delivery answered 200
    cpu_s: float  # the load generator's own CPU while sending


def _load_result(out: Path) -> Load:
    found = json.loads(out.read_text())
    summary = Summary(
        sent=Counter({"stripe": int(found["total"])}),
        statuses=Counter({int(k): int(v) for k, v in found["statuses"].items()}),
        accepted=set(found["sent_ns"]),
        keys=set(found["keys"]),
        lag_max_s=float(found["lag_max_s"]),
        seconds=float(found["seconds"]),
    )
    return Load(summary, {k: int(v) for k, v in found["sent_ns"].items()}, float(found["cpu_s"]))


def _cpu_s(pid: int) -> float:
    return cpu_seconds(psutil.Process(pid))


def receive_run(directory: Path, seed: int, opts: PaymentsOptions) -> Run:
    """Unpaced signed webhooks into the bare app; webhooks per second answered 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/stripe"
    with Children(directory) as kids:
        args = [PYTHON, "-m", "bench.payments_sink", "--port", str(port), "--secret", SECRET]
        sink = kids.start("payments-sink", args, child_env())
        load, go, out = _loadgen(
            kids, directory, url, 0, opts.receive_events, seed, opts.connections
        )
        asyncio.run(_wait_port(port))
        load.wait_json("load ready", 60)
        before = _cpu_s(sink.pid)
        go.touch()
        load.wait(120)
        sink_cpu = _cpu_s(sink.pid) - before
    got = _load_result(out)
    summary = got.summary
    if summary.statuses != Counter({200: opts.receive_events}):
        raise BenchError(f"the bare app did not take every webhook: {dict(summary.statuses)}")
    facts = {
        "server_cpu_pct": 100 * sink_cpu / summary.seconds,
        "load_cpu_pct": 100 * got.cpu_s / summary.seconds,
    }
    return Run(summary.rate, summary.total, summary.seconds, facts)


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
    cpu_pct: dict[str, float]  # process -> % of one core while sending (up, adapter, load...)
    dropped: int = 0  # decisions the gateway dropped for the subscriber (it fell behind)

    @property
    def stored_once(self) -> bool:
        """The ledger's half: one row and one decision per distinct event accepted."""
        distinct = len(self.summary.accepted)
        return self.ledger_rows == distinct and self.ledger_decisions == distinct

    @property
    def exactly_once(self) -> bool:
        """Stored once and published once; not shown (``False``) when the gateway dropped
        decisions for the subscriber."""
        return (
            self.stored_once
            and not self.dropped
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
        found: dict[str, object] = {
            "target_rate": self.rate,
            "achieved_rate": self.summary.rate,
            "webhooks": self.summary.total,
            "distinct_events": len(self.summary.keys),
            "retries": self.summary.total - len(self.summary.keys),
            "ledger_rows": self.ledger_rows,
            "ledger_decisions": self.ledger_decisions,
            "decisions_published": sum(self.published.values()),
            "exactly_once": "yes" if self.exactly_once else "no",
            "dropped_by_gateway": self.dropped,
            "lag_max_ms": self.summary.lag_max_s * 1000,
            "p50_ms": percentile(self.latencies_ms, 0.5) if self.latencies_ms else None,
            "p99_ms": percentile(self.latencies_ms, 0.99) if self.latencies_ms else None,
            "held": "yes" if self.held else "no",
        }
        return found | {f"cpu_{k}_pct": v for k, v in self.cpu_pct.items()}


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


@dataclass
class Observed:
    """What the WebSocket subscriber saw: per event the arrival (ns) of its first decision,
    decisions per event, and how many the gateway dropped (a subscriber falling behind)."""

    arrived: dict[str, int] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    dropped: int = 0


async def _subscribe(url: str, seen: Observed, ready: asyncio.Event) -> None:
    """Take every ``risk.decision.*`` envelope from the gateway's ``/ws``. Without
    per-message compression: the subscriber is the measuring instrument, and deflating
    thousands of small frames a second would be its cost, charged to the hub."""
    import websockets

    async with websockets.connect(url, max_queue=None, compression=None) as ws:
        await ws.send(json.dumps({"subscribe": ["risk.decision.>"]}))
        while True:
            message = json.loads(await ws.recv())
            now = time.time_ns()
            if "ok" in message:
                ready.set()
                continue
            if "dropped" in message:
                seen.dropped = int(message["dropped"])
                continue
            event_id = message.get("payload", {}).get("event_id")
            if isinstance(event_id, str):
                seen.counts[event_id] += 1
                seen.arrived.setdefault(event_id, now)


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
    """``sysmonstm up``, the Stripe adapter and the load generator as processes, a WebSocket
    subscriber here; afterwards the ledger's SQLite file is read."""
    data = directory / "data"
    data.mkdir()
    grpc_port, http_port, adapter_port = free_port(), free_port(), free_port()
    env = hub_env(data, grpc_port, adapter_port)
    seen = Observed()
    url = f"http://127.0.0.1:{adapter_port}/webhooks/stripe"
    count = max(1, round(rate * seconds))

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
        load, go, out = _loadgen(kids, directory, url, rate, count, seed, opts.connections)

        async def drive() -> tuple[Load, bool, dict[str, float]]:
            await _until_up(f"http://127.0.0.1:{http_port}/healthz")
            await _until_up(f"http://127.0.0.1:{adapter_port}/healthz")
            ready = asyncio.Event()
            sub = asyncio.create_task(_subscribe(f"ws://127.0.0.1:{http_port}/ws", seen, ready))
            await asyncio.wait_for(ready.wait(), 10)
            await asyncio.to_thread(load.wait_json, "load ready", 60)
            cpu = {"up": _cpu_s(hub.pid), "adapter": _cpu_s(adapter.pid), "bench": _own_cpu()}
            go.touch()
            await asyncio.to_thread(load.wait, seconds + 60)
            got = _load_result(out)
            cpu = {
                "up": _cpu_s(hub.pid) - cpu["up"],
                "adapter": _cpu_s(adapter.pid) - cpu["adapter"],
                "bench": _own_cpu() - cpu["bench"],
                "load": got.cpu_s,
            }
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and not got.summary.accepted <= seen.arrived.keys():
                if sub.done():
                    sub.result()
                if seen.dropped:
                    break  # what was dropped never arrives
                await asyncio.sleep(0.05)
            drained = got.summary.accepted <= seen.arrived.keys()
            await asyncio.sleep(0.3)  # a repeat published late would show now
            sub.cancel()
            return got, drained, cpu

        try:
            got, drained, cpu = asyncio.run(drive())
        except BenchError as exc:
            logs = "\n".join(f"{c.name}: {c.text()[-1500:]}" for c in (hub, adapter, load))
            raise BenchError(f"{exc}\n{logs}") from exc
    rows, decisions = _ledger_counts(data / "warm.db")
    # the first 200 of each event (Stripe's first delivery) to its decision on the bus, once
    # connections, caches and the first batches are warm
    sent = got.sent_ns
    first = min(sent.values(), default=0)
    latencies = [
        (seen.arrived[k] - t) / 1e6
        for k, t in sent.items()
        if k in seen.arrived and t >= first + WARM_UP_S * 1e9
    ]
    busy = {k: 100 * v / got.summary.seconds for k, v in cpu.items()}
    return PathResult(
        rate, got.summary, latencies, seen.counts, rows, decisions, drained, busy, seen.dropped
    )


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def latency_run(directory: Path, seed: int, opts: PaymentsOptions, memo: Ladder) -> Run:
    """p50 webhook-to-decision latency at the steady rate (p99 and the checks as facts)."""
    result = path_run(directory, seed, opts.steady_rate, opts.steady_seconds, opts)
    memo.steady[seed] = result
    if not result.stored_once:
        raise BenchError(f"exactly once did not hold at {opts.steady_rate:g}/s: {result.facts()}")
    if not result.latencies_ms:
        raise BenchError("no decision arrived")
    p50 = statistics.median(result.latencies_ms)
    return Run(p50, len(result.latencies_ms), result.summary.seconds, result.facts())


@dataclass
class Ladder:
    """What the runs of one suite share: the steady runs by seed (the ladder's first rate
    when it is the steady rate: that run is not repeated), and the highest rate that held
    in the previous ladder (the next one starts there rather than at the bottom)."""

    steady: dict[int, PathResult] = field(default_factory=dict)
    best_index: int | None = None


def _step_text(rate: float, result: PathResult) -> str:
    f = result.facts()
    why = f", gateway dropped {result.dropped}" if result.dropped else ""
    return (
        f"{rate:g}/s: {'held' if result.held else 'not held'} "
        f"(sent {f['achieved_rate']:.0f}/s, p99 {f['p99_ms'] or 0:.0f} ms, "
        f"exactly once {'yes' if result.exactly_once else 'NO'}{why})"
    )


def sustained_run(directory: Path, seed: int, opts: PaymentsOptions, memo: Ladder) -> Run:
    """The ladder of rates, upwards until one does not hold; the highest that held. The first
    run starts at the bottom, a later one at the previous run's highest (one lower if that
    does not hold this time)."""
    start = memo.best_index or 0
    results: dict[int, PathResult] = {}
    started = 0

    def step(i: int) -> PathResult:
        nonlocal started
        rate = opts.ladder[i]
        reuse = memo.steady.get(seed)
        if (rate, opts.ladder_seconds) == (opts.steady_rate, opts.steady_seconds) and reuse:
            results[i] = reuse
        else:
            started += 1
            (directory / f"rate-{i}").mkdir()
            results[i] = path_run(directory / f"rate-{i}", seed, rate, opts.ladder_seconds, opts)
        return results[i]

    i = start
    while i < len(opts.ladder) and started < opts.ladder_steps and step(i).held:
        i += 1
    if i == start and start > 0:  # the previous best did not hold now: one lower
        i = start - 1
        while i >= 0 and not step(i).held:
            i -= 1
        i += 1
    held = [k for k, r in results.items() if r.held and k < i]
    tried = "; ".join(_step_text(opts.ladder[k], results[k]) for k in sorted(results))
    if not held:  # a figure of 0 with the reason, rather than no figure
        memo.best_index = None
        return Run(0.0, 0, 0.0, {"ladder": tried, "held": "no"})
    best = results[max(held)]
    memo.best_index = max(held)
    facts = best.facts() | {"ladder": tried}
    return Run(best.summary.rate, best.summary.total, best.summary.seconds, facts)
