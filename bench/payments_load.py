"""``python -m bench.payments_load``: the payments benchmark's webhook load generator, a process
of its own.

Every delivery is built before the clock starts: the simulator's traffic (``EventPlan``:
card-testing bursts, large amounts, country mismatches, sloppy payloads, ~5% retries of an
event already sent), each body Stripe-signed at build time (a few seconds before it is sent,
well inside Stripe's 300 s tolerance) and framed as a complete HTTP/1.1 request. Building
takes place while the hub starts; then the generator prints ``{"event": "load ready"}`` and
waits for the file ``--go`` to appear. From then on delivery ``i`` is due at
``start + i / rate`` (``--rate 0``: no pacing); ``--connections`` kept-alive connections send
one request at a time each, raw bytes over asyncio streams (``httpx`` costs ~10 times the
CPU per request, and on 2 cores the load generator's CPU is taken from what it measures);
when all are busy the next send waits, and that wait shows as lag, never as a lower rate.

The result (``--out``, JSON): per event key the wall-clock send time (ns) of its first
delivery answered 200, the answers by status, distinct keys, the largest lag, the sending
time and this process's CPU seconds while sending.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sysmonstm.domains.payments import stripe_sig
from sysmonstm.domains.payments.simulate_events import EventPlan, Mix

STRIPE_ONLY = Mix(processors=(1.0, 0.0, 0.0))
CURRENCIES = ("USD", "EUR", "GBP", "JPY")
TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    key: str
    request: bytes


@dataclass
class Outcome:
    sent_ns: dict[str, int] = field(default_factory=dict)  # first delivery answered 200
    statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer
    keys: set[str] = field(default_factory=set)
    lag_max_s: float = 0.0


def build(url: str, secret: str, count: int, seed: int) -> list[Delivery]:
    """``count`` signed Stripe webhook requests for ``url``, in send order."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
    ).encode()
    plan = EventPlan(seed=seed, mix=STRIPE_ONLY, currencies=CURRENCIES)
    out: list[Delivery] = []
    for _ in range(count):
        event = next(plan)
        signature = stripe_sig.sign(event.body, secret)
        request = b"%s%s: %s\r\nContent-Length: %d\r\n\r\n%s" % (
            head,
            stripe_sig.HEADER.encode(),
            signature.encode(),
            len(event.body),
            event.body,
        )
        out.append(Delivery(event.key, request))
    return out


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request, read its whole answer; the status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _worker(
    host: str, port: int, queue: asyncio.Queue[Delivery | None], outcome: Outcome
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (delivery := await queue.get()) is not None:
            sent = time.time_ns()
            try:
                status = await asyncio.wait_for(
                    _exchange(reader, writer, delivery.request), TIMEOUT_S
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                status = 0
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            outcome.statuses[status] += 1
            if status == 200:
                outcome.sent_ns.setdefault(delivery.key, sent)
    finally:
        writer.close()


async def send(
    url: str, deliveries: list[Delivery], rate: float, connections: int
) -> tuple[Outcome, float]:
    """Send ``deliveries`` paced at ``rate`` (0: unpaced); the outcome and the seconds."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    outcome = Outcome()
    queue: asyncio.Queue[Delivery | None] = asyncio.Queue(maxsize=connections)
    workers = [asyncio.create_task(_worker(host, port, queue, outcome)) for _ in range(connections)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for i, delivery in enumerate(deliveries):
            if rate > 0:
                due = start + i / rate
                if (delay := due - loop.time()) > 0.0005:
                    await asyncio.sleep(delay)
                await queue.put(delivery)
                outcome.lag_max_s = max(outcome.lag_max_s, loop.time() - due)
            else:
                await queue.put(delivery)
            outcome.keys.add(delivery.key)
    finally:
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    return outcome, loop.time() - start


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.payments_load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--rate", type=float, required=True, help="deliveries/s; 0: unpaced")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--go", type=Path, required=True, help="start once this file exists")
    parser.add_argument("--out", type=Path, required=True)
    a = parser.parse_args()
    began = time.perf_counter()
    deliveries = build(a.url, a.secret, a.count, a.seed)
    print(json.dumps({"event": "load ready", "build_s": time.perf_counter() - began}), flush=True)
    while not a.go.exists():
        time.sleep(0.005)
    cpu = _cpu_s()
    outcome, seconds = asyncio.run(send(a.url, deliveries, a.rate, a.connections))
    result = {
        "sent_ns": outcome.sent_ns,
        "statuses": {str(k): v for k, v in outcome.statuses.items()},
        "keys": sorted(outcome.keys),
        "total": len(deliveries),
        "seconds": seconds,
        "lag_max_s": outcome.lag_max_s,
        "cpu_s": _cpu_s() - cpu,
    }
    a.out.write_text(json.dumps(result))
    print(json.dumps({"event": "load done", "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
