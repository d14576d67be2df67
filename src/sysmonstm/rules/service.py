"""The rules service: bus events in, through the domains' extractors and the engine, alerts out.

Each extractor pattern that some rule's topic overlaps gets one subscription. An envelope
is handled by the first extractor (in mapping order) whose pattern matches its topic, and
only on that extractor's subscription, so overlapping patterns never double-count an event.
Envelope ids already seen (the last ``dedupe`` of them) are skipped: a replay must not count
a payment twice in a velocity window.

Each transition is kept first (``Record(kind="alert", id=f"{instance}:{state}")`` in the
warm tier, when one is given) and then published on ``alerts.<rule token>`` with source
``rules`` and the same id as event id, so replays stay harmless downstream. That happens in
the background (``sysmonstm.rules.emitter``): evaluation goes on while transitions are
written, many per warm-tier call. ``tick()`` and ``run()`` returning mean what they caused
is kept and published. An envelope the extractor refuses is logged and skipped; a failing
publish or store is logged; the service carries on either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from sysmonstm.errors import ConfigError
from sysmonstm.events.bus import Bus, Subscription
from sysmonstm.events.envelope import Envelope
from sysmonstm.events.topics import TopicPattern, topic_token
from sysmonstm.rules.emitter import SOURCE, Emitter, RecordSink, alert_record, alert_topic
from sysmonstm.rules.engine import Clock, Engine, wall_clock_ms
from sysmonstm.rules.model import AlertEvent, Extractor, Rule

log = structlog.get_logger(__name__)

__all__ = ["SOURCE", "RecordSink", "RuleService", "alert_record", "alert_topic"]


def patterns_overlap(a: TopicPattern, b: TopicPattern) -> bool:
    """Whether some concrete topic matches both patterns."""
    for x, y in zip(a.tokens, b.tokens, strict=False):
        if x != y and "*" not in (x, y):
            return False
    if len(a.tokens) == len(b.tokens):
        return a.tail == b.tail
    shorter = a if len(a.tokens) < len(b.tokens) else b
    return shorter.tail


class RuleService:
    """Runs an ``Engine`` over the bus. ``start`` subscribes; ``run`` works until ``stop``.

    Raises ``ConfigError`` when a rule's topic is reached by no extractor (it could never
    fire). ``tick_seconds`` paces ``tick``; ``dedupe`` bounds the remembered envelope ids.
    ``durable`` names durable subscriptions (on a bus that keeps history) so a restarted
    service resumes where it stopped instead of missing what was published meanwhile.

    Envelopes are evaluated in batches (``Engine.defer``): what arrives within ``linger_s``
    of a batch's first envelope, or sooner ``batch`` samples, is evaluated together (the
    per-batch cost is then spread over many envelopes). A durable subscription thus
    acknowledges an envelope once taken, before it is evaluated: a crash loses that batch,
    as it loses the engine's windows and pending alerts.
    """

    def __init__(
        self,
        bus: Bus,
        rules: Sequence[Rule],
        extractors: Mapping[str, Extractor],
        warm: RecordSink | None = None,
        clock: Clock = wall_clock_ms,
        *,
        tick_seconds: float = 1.0,
        dedupe: int = 20_000,
        durable: str | None = None,
        batch: int = 8192,
        linger_s: float = 0.02,
    ) -> None:
        self.engine = Engine(rules, clock=clock)
        self._bus = bus
        self._emitter = Emitter(bus, warm)
        self._batch = batch
        self._linger = linger_s
        self._flush_due = False
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._dedupe = dedupe
        self._durable = durable
        self._extractors = [(TopicPattern.parse(p), p, fn) for p, fn in extractors.items()]
        wanted: list[str] = []
        for rule in rules:
            topic = TopicPattern.parse(rule.topic)
            hits = [p for compiled, p, _ in self._extractors if patterns_overlap(compiled, topic)]
            if not hits:
                raise ConfigError(
                    f"rule {rule.name!r}: key 'topic': no extractor reads {rule.topic!r} "
                    f"(extractors: {', '.join(extractors) or 'none'})"
                )
            wanted.extend(p for p in hits if p not in wanted)
        self._wanted = [p for _, p, _ in self._extractors if p in wanted]  # mapping order
        self._subs: list[Subscription] = []
        self._routes: dict[str, tuple[str, Extractor] | None] = {}
        self._seen: dict[str, None] = {}
        self._stopped = asyncio.Event()

    def active(self) -> list[AlertEvent]:
        """Every pending or firing alert as it stands."""
        return self.engine.active()

    async def start(self) -> None:
        """Subscribe (once); events published from now on will be evaluated."""
        if not self._subs:
            self._subs = [
                await self._bus.subscribe(
                    p, durable=f"{self._durable}-{topic_token(p)}" if self._durable else None
                )
                for p in self._wanted
            ]

    async def run(self) -> None:
        """Evaluate events and tick until ``stop`` (what was queued is evaluated, and what
        that caused kept and published) or cancel."""
        await self.start()
        emitter = asyncio.create_task(self._emitter.run())
        consumers = [asyncio.create_task(self._consume(sub)) for sub in self._subs]
        ticker = asyncio.create_task(self._ticker())
        waiters: list[asyncio.Task[Any]] = list(consumers)
        if not waiters:  # nothing to consume: wait for stop
            waiters.append(asyncio.create_task(self._stopped.wait()))
        try:
            await asyncio.gather(*waiters)  # consumers end once their subscription is closed
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await self._emitter.put(self.engine.flush())
            await self._emitter.flush()
        finally:
            for task in [*waiters, ticker, emitter]:
                task.cancel()
            await asyncio.gather(*waiters, ticker, emitter, return_exceptions=True)
            await self._close()

    async def stop(self) -> None:
        """Close the subscriptions; ``run`` returns once what they held is evaluated."""
        self._stopped.set()
        await self._close()

    async def _close(self) -> None:
        for sub in self._subs:
            await sub.close()

    async def tick(self) -> None:
        """Apply the transitions due by the clock (absence, ``for``, ``keep_firing_for``);
        returns once they are kept and published."""
        await self._emitter.put(self.engine.tick(self._clock()))
        await self._emitter.flush()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            try:
                await self.tick()
            except Exception:
                log.exception("rules.tick_failed")

    def _route(self, topic: str) -> tuple[str, Extractor] | None:
        if topic not in self._routes:
            found = next(((p, fn) for c, p, fn in self._extractors if c.matches(topic)), None)
            if len(self._routes) >= 10_000:
                self._routes.clear()
            self._routes[topic] = found
        return self._routes[topic]

    async def _consume(self, sub: Subscription) -> None:
        async for envelope in sub:
            route = self._route(envelope.topic)
            if route is None or route[0] != sub.pattern:
                continue  # another subscription's extractor owns this topic
            try:
                await self._handle(envelope, route[1])
            except Exception:
                log.exception("rules.envelope_failed", topic=envelope.topic, event_id=envelope.id)

    async def _handle(self, envelope: Envelope, extract: Extractor) -> None:
        if envelope.id in self._seen or not self.engine.reaches(envelope.topic):
            return
        self._seen[envelope.id] = None
        if len(self._seen) > self._dedupe:
            del self._seen[next(iter(self._seen))]
        try:
            observations = list(extract(envelope))
        except Exception as exc:
            log.warning(
                "rules.envelope_skipped",
                topic=envelope.topic,
                event_id=envelope.id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        self.engine.defer(envelope.topic, observations)
        if self.engine.backlog >= self._batch:
            await self._emitter.put(self.engine.flush())
        elif not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_later(self._linger, self._flush_late)

    def _flush_late(self) -> None:
        """``linger`` after a batch began, once the consumers yield: evaluate what waits."""
        self._flush_due = False
        self._emitter.put_nowait(self.engine.flush())
