"""The rules suite's book and stream: 1,000 valid rules over the payload the pipeline publishes."""

from __future__ import annotations

from bench.rules_book import idle_book, rule_book
from bench.rules_stream import FleetStream
from sysmonstm.domains.metrics.observe import metrics_observations
from sysmonstm.events.envelope import make_envelope
from sysmonstm.rules import Engine, parse_rules
from sysmonstm.rules.testing import ManualClock


def test_the_book_holds_1000_distinct_rules_the_engine_takes() -> None:
    """Exactly 1,000 rules, names unique, every one accepted by the engine."""
    rules = parse_rules(rule_book())
    assert len(rules) == len({r.name for r in rules}) == 1000
    Engine(rules)
    assert [r.name for r in parse_rules(idle_book())] == ["never_matches"]


def test_the_stream_publishes_live_batches_and_some_rules_fire() -> None:
    """Each payload is one frame of the 100 series (24 observations); over a few minutes
    of sample time a handful of rules fire, far from all."""
    stream = FleetStream(20, seed=1, first_ms=1_700_000_000_000)
    clock = ManualClock(1_700_000_000_000)
    engine = Engine(parse_rules(rule_book()), clock=clock)
    fired: set[str] = set()
    for _ in range(200):
        frame, values = stream.next_round()
        for host in range(stream.hosts):
            payload = stream.payload(host, frame, values[host])
            assert len(payload["values"][0]) == len(payload["series"]) == 100
            envelope = make_envelope(stream.topic(host), payload)
            observations = metrics_observations(envelope)
            assert len(observations) == 24
            clock.set(payload["times_ms"][0])
            engine.defer(envelope.topic, observations)
        fired |= {e.rule for e in engine.flush() if str(e.state) == "firing"}
    assert 5 <= len(fired) <= 300
