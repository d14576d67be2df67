"""The rules service on the real in-process bus: metrics in, alerts and records out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sysmonstm.domains.metrics.observe import EXTRACTORS
from sysmonstm.errors import ConfigError
from sysmonstm.events.envelope import Envelope
from sysmonstm.events.memory import MemoryBus
from sysmonstm.events.testing import Capture
from sysmonstm.rules import Engine, Observation, RuleService, load_rules, parse_rules
from sysmonstm.rules.testing import ManualClock
from sysmonstm.store.model import Record
from tests.rules.support import T0, rule_toml

METRICS_RULES = Path(__file__).parents[2] / "src/sysmonstm/domains/metrics/rules.toml"


class Recorder:
    """Below the warm-tier seam: keeps what the service appends."""

    def __init__(self) -> None:
        self.kept: list[Record] = []

    async def append_records(self, records: Sequence[Record]) -> None:
        self.kept.extend(records)

    async def records(
        self,
        kind: str,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
        key: str | None = None,
        limit: int = 1000,
    ) -> list[Record]:
        return [r for r in self.kept if r.kind == kind][:limit]


def metrics_payload(source: str, time_ms: int, metrics: dict[str, float]) -> dict[str, Any]:
    """A ``metrics.<machine>`` payload with one frame, as the aggregator publishes it."""
    series = sorted(metrics)
    return {
        "source": source,
        "host": f"{source}.example",
        "labels": {"env": "prod"},
        "seq": 1,
        "interval_ms": 1000,
        "series": series,
        "times_ms": [time_ms],
        "values": [[metrics[s] for s in series]],
    }


class Rig:
    def __init__(
        self, bus: MemoryBus, clock: ManualClock, recorder: Recorder, capture: Capture
    ) -> None:
        self.bus, self.clock, self.recorder, self.capture = bus, clock, recorder, capture
        self.service: RuleService | None = None
        self.task: asyncio.Task[None] | None = None

    async def serve(self, service: RuleService) -> RuleService:
        self.service = service
        await service.start()
        self.task = asyncio.create_task(service.run())
        return service

    async def metrics(self, source: str, seconds: float, **metrics: float) -> Envelope:
        named = {k.replace("__", "."): v for k, v in metrics.items()}
        return await self.bus.publish(
            f"metrics.{source}",
            metrics_payload(source, T0 + round(seconds * 1000), named),
            source="aggregator",
        )

    async def alert(self, rule: str, state: str = "firing") -> Envelope:
        return await self.capture.wait_for(
            lambda e: e.payload["rule"] == rule and e.payload["state"] == state
        )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    bus = MemoryBus()
    await bus.start()
    capture = await Capture.start(bus, "alerts.>")
    r = Rig(bus, ManualClock(T0), Recorder(), capture)
    yield r
    if r.service is not None:
        await r.service.stop()
    if r.task is not None:
        await r.task
    await capture.close()
    await bus.close()


async def metrics_service(rig: Rig, **options: Any) -> RuleService:
    return await rig.serve(
        RuleService(
            rig.bus, load_rules([METRICS_RULES]), EXTRACTORS, rig.recorder, rig.clock, **options
        )
    )


async def test_metrics_envelope_publishes_an_alert_and_keeps_its_record(rig: Rig) -> None:
    service = await metrics_service(rig)
    await rig.metrics("web1", 0, cpu__used=20, **{'disk__used_pct{mount="/var"}': 95.0})
    env = await rig.alert("disk_full")
    assert env.topic == "alerts.disk_full"
    assert env.source == "rules"
    payload = env.payload
    assert payload["key"] == 'web1|mount="/var"'
    assert payload["message"] == "Disk /var on web1.example at 95% used"
    assert (payload["value"], payload["threshold"], payload["time_ms"]) == (95.0, 90.0, T0)
    assert env.id == f"{payload['id']}:firing"
    assert rig.recorder.kept == [
        Record(
            kind="alert", id=f"{payload['id']}:firing", time_ms=T0, key=payload["id"], body=payload
        )
    ]
    assert [(e.rule, e.key) for e in service.active()] == [("disk_full", 'web1|mount="/var"')]


async def test_malformed_envelopes_are_skipped_and_the_service_carries_on(rig: Rig) -> None:
    await metrics_service(rig)
    await rig.bus.publish("metrics.bad1", {"nonsense": True})
    await rig.bus.publish("metrics.bad2", "not a mapping")
    bad_key = metrics_payload("bad3", T0, {"swap.used_pct": 99.0})
    bad_key["series"] = ["swap.used_pct{oops"]
    await rig.bus.publish("metrics.bad3", bad_key)
    await rig.metrics("web1", 0, swap__used_pct=60)
    env = await rig.alert("swap_high")
    assert env.payload["key"] == "web1"
    assert rig.task is not None
    assert not rig.task.done()
    assert {e.payload["key"] for e in rig.capture.events} == {"web1"}


async def test_a_silent_host_fires_on_tick_and_resolves_when_it_returns(rig: Rig) -> None:
    service = await metrics_service(rig)
    await rig.metrics("web1", 0, cpu__used=10, swap__used_pct=60)
    await rig.alert("swap_high")  # the envelope has been evaluated
    rig.clock.advance(29)
    await service.tick()
    rig.clock.advance(1)
    await service.tick()
    env = await rig.alert("host_silent")
    assert env.payload["message"] == "web1.example has sent no metrics for 30 s"
    assert env.payload["group"] == {"source": "web1"}
    await rig.metrics("web1", 31, cpu__used=10)
    await rig.alert("host_silent", "resolved")
    states = [r.id.rsplit(":", 1)[1] for r in rig.recorder.kept if "host_silent" in r.id]
    assert states == ["firing", "resolved"]


async def test_run_ticks_on_its_own(rig: Rig) -> None:
    await metrics_service(rig, tick_seconds=0.01)
    await rig.metrics("web1", 0, swap__used_pct=60, cpu__used=1)
    await rig.alert("swap_high")
    rig.clock.advance(60)
    await rig.alert("host_silent")


async def test_stop_evaluates_what_was_already_queued(rig: Rig) -> None:
    service = await metrics_service(rig)
    for host in ("a", "b", "c"):
        await rig.metrics(host, 0, swap__used_pct=70)
    await service.stop()
    assert rig.task is not None
    await rig.task
    assert sorted(r.body["key"] for r in rig.recorder.kept) == ["a", "b", "c"]


def card_extractor(envelope: Envelope) -> list[Observation]:
    return [Observation(envelope.payload["card"], envelope.time_ms, envelope.payload)]


VELOCITY = rule_toml(
    name="velocity",
    topic="tx.>",
    field=None,
    op="gt",
    threshold=2,
    group_by=["card"],
    window={"agg": "count", "seconds": 60},
)


async def test_a_replayed_envelope_is_counted_once(rig: Rig) -> None:
    await rig.serve(
        RuleService(rig.bus, parse_rules(VELOCITY), {"tx.>": card_extractor}, clock=rig.clock)
    )
    await rig.bus.publish("tx.card", {"card": "c1"}, event_id="tx1", time_ms=T0)
    await rig.bus.publish("tx.card", {"card": "c1"}, event_id="tx1", time_ms=T0)
    await rig.bus.publish("tx.card", {"card": "c1"}, event_id="tx2", time_ms=T0 + 1000)
    await rig.bus.publish("tx.card", {"card": "c1"}, event_id="tx3", time_ms=T0 + 2000)
    env = await rig.alert("velocity")
    assert (env.payload["time_ms"], env.payload["value"]) == (T0 + 2000, 3.0)


async def test_overlapping_extractor_patterns_deliver_each_event_once(rig: Rig) -> None:
    extractors = {"tx.>": card_extractor, "tx.card": card_extractor}
    service = await rig.serve(
        RuleService(rig.bus, parse_rules(VELOCITY), extractors, clock=rig.clock, dedupe=0)
    )
    for i in range(3):
        await rig.bus.publish("tx.card", {"card": "c1"}, time_ms=T0 + i)
    env = await rig.alert("velocity")
    assert (env.payload["time_ms"], env.payload["value"]) == (T0 + 2, 3.0)
    assert service.engine.stats().groups == 1


async def test_a_rule_no_extractor_reads_is_a_config_error() -> None:
    bus = MemoryBus()
    with pytest.raises(ConfigError, match=r"rule 'velocity': key 'topic': no extractor"):
        RuleService(bus, parse_rules(VELOCITY), EXTRACTORS)


class SlowRecorder(Recorder):
    """Holds the first append until released; counts the appends."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def append_records(self, records: Sequence[Record]) -> None:
        self.calls.append(len(records))
        self.started.set()
        if len(self.calls) == 1:
            await self.release.wait()
        await super().append_records(records)


async def test_transitions_that_pile_up_during_a_write_go_out_in_one_write_in_order(
    rig: Rig,
) -> None:
    """Evaluation does not wait for the warm tier; what piled up meanwhile is kept in one
    append, and each transition is published after its record, in order."""
    slow = SlowRecorder()
    rig.recorder = slow
    await rig.serve(
        RuleService(rig.bus, load_rules([METRICS_RULES]), EXTRACTORS, slow, rig.clock, linger_s=0)
    )
    await rig.metrics("a", 0, swap__used_pct=70)
    await slow.started.wait()
    for i, host in enumerate(("b", "c", "d")):
        await rig.metrics(host, i, swap__used_pct=70)
        await asyncio.sleep(0.01)  # each evaluated on its own while the first write waits
    assert rig.capture.events == []  # nothing published before its record is kept
    slow.release.set()
    await rig.capture.wait_for(lambda e: e.payload["key"] == "d")
    assert slow.calls == [1, 3]
    assert [e.payload["key"] for e in rig.capture.events] == ["a", "b", "c", "d"]


async def test_a_burst_evaluated_in_batches_publishes_what_one_at_a_time_would(
    rig: Rig,
) -> None:
    """Hundreds of envelopes queued at once: the service defers and evaluates them in
    batches; the alerts published are those of evaluating them one by one, in order."""
    rules = load_rules([METRICS_RULES])
    service = await rig.serve(
        RuleService(rig.bus, rules, EXTRACTORS, rig.recorder, rig.clock, batch=64)
    )
    envelopes = []
    for i in range(300):
        host = f"h{i % 7}"
        value = float((i * 37) % 100)
        envelopes.append(await rig.metrics(host, i, swap__used_pct=value, cpu__used=value))
    reference = Engine(rules, clock=rig.clock, vectorize=False)
    expected = [
        e.to_payload()
        for env in envelopes
        for e in reference.observe(env.topic, EXTRACTORS["metrics.>"](env))
    ]
    assert expected
    await service.stop()
    assert rig.task is not None
    await rig.task
    assert [e.payload for e in rig.capture.events] == expected
