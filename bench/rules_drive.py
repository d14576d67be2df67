"""One process of the ``rules`` suite: the real rule service fed the fleet's stream.

What runs here is what ``sysmonstm up`` runs for rules: ``Core.open`` on a fresh data
directory (in-process bus, SQLite warm tier with ``synchronous=FULL``) and the body of
``serve_rules``: a ``RuleService`` over the rules of ``rules.files`` (shipped defaults off:
the book carries the metrics domain's) and every domain's extractors, started and run. In
front of it, in the same event loop, the aggregator's last step: each message is published
on ``metrics.<machine>`` with the payload the pipeline publishes (``bench.rules_stream``),
one host frame of 100 values per message. A subscriber on ``alerts.>`` takes every
transition the service publishes, as a gateway would; the service also writes each one to
the warm tier and logs it (JSON, to this process's log file).

Phases, on the same service (so groups and windows stay warm): an unpaced warm-up, an
unpaced ``capacity`` phase (the publisher blocks whenever the subscription's queue is full:
the rate is what the service consumed), then paced rungs. A rung publishes ``rate``
samples/s for ``rung_s`` seconds, then waits until the service has evaluated everything.
Lag per message = when the engine's ``flush`` that evaluated it returned (its transitions
handed to the emitter; see ``Clocked``) - when the message was due by the schedule (not
when it was actually published: a publisher held back by a busy loop counts as lag). A
rung holds when the publisher kept at least ``PACE_HELD`` of its rate and the p99 lag
stayed under ``LAG_HELD_MS``.

Run: ``python -m bench.rules_drive --data DIR --book full`` (see ``--help``); the last
output line is a JSON object with ``"event": "rules done"``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.rules_book import idle_book, rule_book
from bench.rules_stream import FleetStream
from sysmonstm.config import Settings
from sysmonstm.events.bus import Bus
from sysmonstm.logs import configure_logging
from sysmonstm.rules import AlertEvent, Engine, RuleService
from sysmonstm.runtime import Core
from sysmonstm.services.rules import extractors_of, load_configured_rules

HOSTS = 100
PACE_HELD = 0.98
LAG_HELD_MS = 500.0
DRAIN_TIMEOUT_S = 60.0


class GcPauses:
    """The garbage collector's pauses (ms) since ``clear``: they stop the event loop."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._start) * 1000.0)

    def clear(self) -> None:
        self.pauses.clear()

    def summary(self) -> dict[str, float]:
        return {"gc_ms": sum(self.pauses), "gc_max_ms": max(self.pauses, default=0.0)}


class Clocked:
    """Due times of the messages published, and when the engine evaluated each.

    ``watch`` wraps the service's engine: its ``defer`` calls come one per message, in
    publish order (every message of this stream reaches a rule), and a ``flush`` evaluates
    everything deferred so far, so each message is done when the first flush after its
    ``defer`` returns (transitions computed and handed to the emitter)."""

    def __init__(self) -> None:
        self.due: list[float] = []
        self.done: list[float] = []
        self._deferred = 0

    def watch(self, engine: Engine) -> None:
        defer, flush = engine.defer, engine.flush

        def timed_defer(topic: str, observations: Any) -> None:
            defer(topic, observations)
            self._deferred += 1

        def timed_flush() -> list[AlertEvent]:
            events = flush()
            now = time.perf_counter()
            self.done.extend([now] * (self._deferred - len(self.done)))
            return events

        engine.defer = timed_defer  # type: ignore[method-assign]
        engine.flush = timed_flush  # type: ignore[method-assign]

    @property
    def completed(self) -> int:
        return len(self.done)


@dataclass
class Publisher:
    """Publishes the fleet's frames, host after host, a round at a time."""

    bus: Bus
    stream: FleetStream
    clocked: Clocked
    _round: tuple[int, np.ndarray] | None = None
    _host: int = HOSTS
    alerts: Counter[str] = field(default_factory=Counter)

    async def one(self, due: float) -> None:
        if self._host >= self.stream.hosts:
            self._round, self._host = self.stream.next_round(), 0
        assert self._round is not None
        frame, values = self._round
        h = self._host
        self._host += 1
        seq = len(self.clocked.due)
        self.clocked.due.append(due)
        await self.bus.publish(
            self.stream.topic(h),
            self.stream.payload(h, frame, values[h]),
            source=self.stream.topic(h).split(".", 1)[1],
            event_id=str(seq),
        )

    async def unpaced(self, seconds: float) -> int:
        """Publish as fast as the bus takes messages; returns how many."""
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            for _ in range(50):
                await self.one(time.perf_counter())
            n += 50
            await asyncio.sleep(0)
        return n

    async def paced(self, msgs_per_s: float, seconds: float) -> tuple[int, float]:
        """Publish on schedule; returns how many and the seconds it took."""
        total = round(msgs_per_s * seconds)
        start = time.perf_counter()
        i = 0
        while i < total:
            due = min(total, int((time.perf_counter() - start) * msgs_per_s) + 1)
            while i < due:
                await self.one(start + i / msgs_per_s)
                i += 1
            await asyncio.sleep(max(0.0, start + i / msgs_per_s - time.perf_counter()))
        return total, time.perf_counter() - start


async def drained(clocked: Clocked) -> float:
    """Wait until every published message was evaluated; returns the seconds waited."""
    start = time.perf_counter()
    while clocked.completed < len(clocked.due):
        if time.perf_counter() - start > DRAIN_TIMEOUT_S:
            raise RuntimeError(f"the service did not catch up within {DRAIN_TIMEOUT_S} s")
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


async def settled(counts: Counter[str]) -> None:
    """Wait until no alert has come in for 100 ms (2 s at most)."""
    end = time.perf_counter() + 2.0
    while time.perf_counter() < end:
        before = counts.total()
        await asyncio.sleep(0.1)
        if counts.total() == before:
            return


async def count_alerts(bus: Bus, counts: Counter[str]) -> None:
    sub = await bus.subscribe("alerts.>", maxsize=100_000)
    async for envelope in sub:
        counts[str(envelope.payload.get("state"))] += 1
        counts[f"rule:{envelope.payload.get('rule')}"] += 1


def _rung(clocked: Clocked, first: int, rate: float, sent: int, secs: float) -> dict[str, Any]:
    due = np.array(clocked.due[first:])
    done = np.array(clocked.done[first : first + len(due)])
    lag_ms = (done - due) * 1000.0
    achieved = sent * 100 / secs
    p99 = float(np.percentile(lag_ms, 99))
    return {
        "rate": rate,
        "samples": sent * 100,
        "seconds": secs,
        "achieved": achieved,
        "lag_p50_ms": float(np.percentile(lag_ms, 50)),
        "lag_p99_ms": p99,
        "lag_max_ms": float(lag_ms.max()),
        "held": bool(achieved >= PACE_HELD * rate and p99 <= LAG_HELD_MS),
    }


def ladder(capacity: float, first: float) -> list[float]:
    """Rates to try after ``first``: just under the measured capacity, then lower."""
    top = math.floor(0.9 * capacity / 50_000) * 50_000
    return [r for r in (top, math.floor(0.7 * top / 50_000) * 50_000) if r > 0 and r != first]


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    book = args.data / "book.toml"
    book.write_text(rule_book() if args.book == "full" else idle_book(), encoding="utf-8")
    settings = Settings(
        data_dir=args.data,
        rules={"files": [book], "defaults": False},  # type: ignore[arg-type]
    )
    core = await Core.open(settings)
    clocked = Clocked()
    alerts: Counter[str] = Counter()
    counter = asyncio.create_task(count_alerts(core.bus, alerts))
    built = time.perf_counter()
    # what serve_rules does, with the engine's defer/flush timed
    service = RuleService(core.bus, load_configured_rules(core), extractors_of(core), core.warm)
    clocked.watch(service.engine)
    await service.start()
    runner = asyncio.create_task(service.run())
    load_s = time.perf_counter() - built
    first_ms = time.time_ns() // 1_000_000 - 3_600_000
    pub = Publisher(core.bus, FleetStream(HOSTS, args.seed, first_ms), clocked)
    pauses = GcPauses()
    out: dict[str, Any] = {"event": "rules done", "book": args.book, "load_seconds": load_s}
    try:
        await pub.unpaced(args.warm_s)
        await drained(clocked)
        first, cpu0, t0 = len(clocked.due), time.process_time(), time.perf_counter()
        await pub.unpaced(args.capacity_s)
        await drained(clocked)
        secs = time.perf_counter() - t0
        out["capacity_samples"] = (len(clocked.due) - first) * 100
        out["capacity_seconds"] = secs
        out["capacity"] = out["capacity_samples"] / secs
        out["capacity_cpu_cores"] = (time.process_time() - cpu0) / secs
        out["capacity_per_core"] = out["capacity"] / max(out["capacity_cpu_cores"], 1e-9)
        print(json.dumps({"event": "rules capacity", "rate": out["capacity"]}), flush=True)
        rungs: list[dict[str, Any]] = []
        rates = list(args.rates)
        if args.adapt:
            rates += ladder(out["capacity"], rates[0] if rates else 0.0)
        alerts.clear()
        for rate in rates:
            if rungs and rungs[-1]["held"] and rate < rungs[-1]["rate"]:
                continue  # a lower rate is only tried when a higher one did not hold
            first = len(clocked.due)
            pauses.clear()
            sent, secs = await pub.paced(rate / 100, args.rung_s)
            drain_s = await drained(clocked)
            rung = _rung(clocked, first, rate, sent, secs) | {"drain_s": drain_s}
            rung |= pauses.summary()
            if not rungs:  # the target rate: what fired there (once the emitter is through)
                await settled(alerts)
                rung["alerts"] = {k: v for k, v in alerts.items() if not k.startswith("rule:")}
                rung["rules_fired"] = sum(1 for k in alerts if k.startswith("rule:"))
                rung["alerts_per_s"] = alerts["firing"] / secs
            rungs.append(rung)
            print(json.dumps({"event": "rules rung", **rung}), flush=True)
        out["rungs"] = rungs
        out["stats"] = None
    finally:
        await service.stop()
        await runner
        out["stats"] = str(service.engine.stats())
        counter.cancel()
        await core.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a fresh data directory")
    p.add_argument("--book", choices=("full", "idle"), default="full")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warm-s", type=float, default=1.0)
    p.add_argument("--capacity-s", type=float, default=2.0)
    p.add_argument("--rung-s", type=float, default=3.0)
    p.add_argument("--rates", type=lambda s: [float(r) for r in s.split(",") if r], default=[])
    p.add_argument("--adapt", action="store_true", help="add rungs below the capacity")
    args = p.parse_args()
    configure_logging("info", "json")
    print(json.dumps(asyncio.run(drive(args))), flush=True)


if __name__ == "__main__":
    main()
