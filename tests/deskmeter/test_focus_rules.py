"""The Deskmeter focus rules (domains/deskmeter/rules.toml) on the shared rule engine.

Scripted sessions publish what the aggregator publishes (tests/deskmeter/scripted.py) on a
synthetic clock; the rules judge them on event time, boundaries included: the 10th switch
of an hour does not fire, the 11th does; 30 min idle does not, the next heartbeat does; 90
min on a task does not, the next heartbeat does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sysmonstm.domains.deskmeter.domain import DOMAIN
from sysmonstm.domains.deskmeter.observe import EXTRACTORS, desk_observations
from sysmonstm.errors import InvalidInputError
from sysmonstm.events.envelope import Envelope, make_envelope
from sysmonstm.events.memory import MemoryBus
from sysmonstm.events.testing import Capture
from sysmonstm.rules import AlertEvent, Engine, RuleService, load_rules
from sysmonstm.rules.testing import ManualClock
from sysmonstm.store.model import Record
from tests.deskmeter.scripted import T0, Session, ms

RULES = Path(__file__).parents[2] / "src/sysmonstm/domains/deskmeter/rules.toml"


class Focus:
    """The shipped focus rules on an engine whose clock follows the scripted events."""

    def __init__(self) -> None:
        self.clock = ManualClock(T0)
        self.engine = Engine(load_rules([RULES]), clock=self.clock)
        self.events: list[AlertEvent] = []

    def feed(self, *envelopes: Envelope) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        for env in envelopes:
            self.clock.set(max(self.clock(), env.time_ms))
            out += self.engine.observe(env.topic, desk_observations(env))
        self.events += out
        return out

    def tick(self, at_s: float) -> list[AlertEvent]:
        self.clock.set(ms(at_s))
        out = self.engine.tick()
        self.events += out
        return out

    def of(self, rule: str) -> list[tuple[str, int]]:
        """(state, time) of every transition of ``rule`` so far."""
        return [(str(e.state), e.time_ms) for e in self.events if e.rule == rule]


WORKSPACES = ["Code", "Mail", "Web", "Chat"]


def hop(session: Session, at_s: float, n: int) -> Envelope:
    """The ``n``-th workspace change of a session (cycling through four desktops)."""
    return session.switch(at_s, workspace=WORKSPACES[n % 4], index=n % 4)


# -- context switching ----------------------------------------------------------------------


def test_the_eleventh_switch_within_an_hour_fires_and_the_tenth_does_not() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Code", task="Project X"))
    for n in range(1, 11):
        assert focus.feed(hop(s, 60 * n, n)) == [], f"switch {n} must not fire"
    (fired,) = focus.feed(hop(s, 660, 11))
    assert (fired.rule, str(fired.state), str(fired.severity)) == (
        "context_switching",
        "firing",
        "warning",
    )
    assert fired.value == 11.0
    assert fired.time_ms == fired.started_ms == ms(660)
    assert dict(fired.group) == {"machine": "m-1a2b"}
    assert dict(fired.labels) == {"domain": "deskmeter", "title": "Context switching"}
    assert fired.message == "Context switching on laptop: 11 switches in the last hour"


def test_eleven_switches_spanning_exactly_an_hour_do_not_fire() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Code"))
    for n in range(1, 11):
        focus.feed(hop(s, 360 * (n - 1) + 1, n))  # the first at 1 s, the tenth at 3241 s
    # the first change left the window when the 11th arrives exactly one hour after it
    assert focus.feed(hop(s, 3601, 11)) == []
    (fired,) = focus.feed(hop(s, 3602, 12))
    assert (fired.rule, fired.value) == ("context_switching", 11.0)


def test_idle_toggles_and_same_state_switches_are_not_context_switches() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Code", task="Project X"))
    for n in range(1, 13):
        focus.feed(s.switch(60 * n, idle=n % 2 == 1, idle_ms=300_000 if n % 2 else 0))
    focus.feed(s.switch(800))  # same state again (a restart after a silence)
    assert focus.of("context_switching") == []


def test_task_changes_count_as_context_switches() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Code", task="t0"))
    for n in range(1, 11):
        focus.feed(s.switch(10 * n, task=f"t{n}"))
    (fired,) = focus.feed(s.switch(110, task="t11"))
    assert fired.rule == "context_switching"


def test_switches_are_counted_per_machine() -> None:
    focus = Focus()
    a, b = Session("m-a", "desk"), Session("m-b", "laptop")
    focus.feed(a.switch(0), b.switch(0))
    for n in range(1, 7):
        focus.feed(hop(a, 10 * n, n), hop(b, 10 * n + 5, n))
    assert focus.events == [], "6 + 6 switches on two machines are not 11 on one"
    for n in range(7, 12):
        focus.feed(hop(b, 10 * n, n))
    assert [(e.rule, e.key, str(e.state)) for e in focus.events] == [
        ("context_switching", "m-b", "firing")
    ]


def test_context_switching_resolves_once_the_last_hour_holds_five_or_fewer() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0))
    for n in range(1, 12):
        focus.feed(hop(s, 60 * n, n))  # changes at 60 .. 660 s; fires at 660
    assert focus.of("context_switching") == [("firing", ms(660))]
    # at 3959 s the window (359, 3959] still holds the changes from 360 s on: six
    assert focus.tick(3959) == []
    (resolved,) = focus.tick(3960)
    assert (str(resolved.state), resolved.resolved_ms, resolved.value) == (
        "resolved",
        ms(3960),
        5.0,
    )


# -- idle -----------------------------------------------------------------------------------


def idle_session(focus: Focus, s: Session, until_s: int) -> None:
    """Active on "Project X" from 0, idle from 300 s (no input since 0), heartbeats every
    10 s up to ``until_s``."""
    focus.feed(s.switch(0, workspace="Code", task="Project X"))
    focus.feed(s.switch(300, idle=True, idle_ms=300_000))
    for t in range(310, until_s + 1, 10):
        focus.feed(s.heartbeat(t, idle_ms=t * 1000))


def test_idle_for_more_than_thirty_minutes_fires_info_and_ends_on_return() -> None:
    focus, s = Focus(), Session()
    idle_session(focus, s, 1800)
    assert focus.of("idle_long") == [], "exactly 30 min idle does not fire"
    (fired,) = focus.feed(s.heartbeat(1810, idle_ms=1_810_000))
    assert (fired.rule, str(fired.state), str(fired.severity)) == ("idle_long", "firing", "info")
    assert fired.value == pytest.approx(1810 / 60)
    assert fired.message == "Idle on laptop: no input for 30 min"
    assert dict(fired.labels)["title"] == "Away"
    focus.feed(s.heartbeat(2400, idle_ms=2_400_000))
    (back,) = focus.feed(s.switch(2405, idle=False, idle_ms=0))
    assert (back.id, str(back.state), back.resolved_ms) == (fired.id, "resolved", ms(2405))
    assert focus.of("context_switching") == []
    assert focus.of("deep_work") == []


def test_idle_time_is_the_idle_interval_when_the_watcher_resets_idle_ms() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Code"))
    focus.feed(s.switch(100, idle=True, idle_ms=0))
    assert focus.feed(s.heartbeat(1900, idle_ms=0)) == []  # idle for exactly 30 min
    (fired,) = focus.feed(s.heartbeat(1901, idle_ms=0))
    assert fired.rule == "idle_long"


# -- deep work ------------------------------------------------------------------------------


def test_ninety_minutes_on_one_task_fires_deep_work_and_a_switch_ends_it() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Code", task="Project X"))
    for t in range(10, 5401, 10):
        focus.feed(s.heartbeat(t, idle_ms=1000))
    assert focus.events == [], "exactly 90 min does not fire"
    (fired,) = focus.feed(s.heartbeat(5410, idle_ms=1000))
    assert (fired.rule, str(fired.state), str(fired.severity)) == (
        "deep_work",
        "firing",
        "success",
    )
    assert fired.value == pytest.approx(5410 / 60)
    assert fired.message == "Deep work on laptop: 90 min on Project X"
    assert dict(fired.labels)["title"] == "Deep work"
    (ended,) = focus.feed(hop(s, 6000, 1))
    assert (ended.id, str(ended.state), ended.resolved_ms) == (fired.id, "resolved", ms(6000))


def test_deep_work_ends_when_the_person_goes_idle() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Code", task="Project X"))
    focus.feed(s.heartbeat(5500))
    (ended,) = focus.feed(s.switch(5600, idle=True, idle_ms=300_000))
    assert focus.of("deep_work") == [("firing", ms(5500)), ("resolved", ms(5600))]
    assert ended.state == "resolved"


def test_deep_work_names_the_workspace_when_no_task_is_set() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Web", task=""))
    (fired,) = focus.feed(s.heartbeat(5460))
    assert fired.message == "Deep work on laptop: 91 min on Web"


def test_deep_work_counts_one_uninterrupted_interval() -> None:
    focus, s = Focus(), Session()
    focus.feed(s.switch(0, workspace="Code", task="Project X"))
    focus.feed(s.heartbeat(4800))
    focus.feed(s.switch(4800, workspace="Mail", index=1))
    focus.feed(s.heartbeat(9600))
    assert focus.of("deep_work") == []


# -- the extractor --------------------------------------------------------------------------


def test_a_switch_becomes_one_observation_with_the_rule_fields() -> None:
    s = Session()
    s.switch(0, workspace="Code", task="Project X")
    (obs,) = desk_observations(s.switch(120, workspace="Mail", index=1, idle_ms=1200))
    assert (obs.key, obs.time_ms) == ("m-1a2b", ms(120))
    assert obs.fields == {
        "machine": "m-1a2b",
        "host": "laptop",
        "kind": "switch",
        "workspace": "Mail",
        "workspace_index": 1,
        "task": "Project X",
        "focus": "Project X",
        "idle": False,
        "idle_ms": 1200,
        "time_zone": "Europe/Berlin",
        "idle_min": 0.02,
        "task_min": 0.0,
        "change": "workspace",
    }


def test_a_heartbeat_carries_no_change_and_idle_zeroes_task_minutes() -> None:
    s = Session()
    s.switch(0, workspace="Code", task="X", idle=True)
    (obs,) = desk_observations(s.heartbeat(600, idle_ms=900_000))
    assert "change" not in obs.fields
    assert (obs.fields["idle_min"], obs.fields["task_min"]) == (15.0, 0.0)


def test_other_workspace_topics_carry_no_observation() -> None:
    body = Session().switch(0).payload
    assert desk_observations(make_envelope("workspace.layout.m-1a2b", body)) == []
    assert desk_observations(make_envelope("workspace.switch.m-1a2b.extra", body)) == []


def payload(**changes: Any) -> dict[str, Any]:
    s = Session()
    body = dict(s.switch(0).payload)
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not a mapping", "expected a mapping"),
        (payload(machine=None), "'machine' is missing"),
        (payload(machine=""), "'machine' must not be empty"),
        (payload(time_ms=True), "'time_ms' is missing"),
        (payload(time_ms=1.5), "'time_ms' is missing"),
        (payload(idle="no"), "'idle' is missing"),
        (payload(current=None), "'current' is missing"),
        (payload(current={"start_ms": T0}), "'duration_s' is missing"),
        (payload(current={"duration_s": "long"}), "'duration_s' is missing"),
        (payload(idle_ms="x"), "'idle_ms' is of the wrong type"),
        (payload(closed=[]), "'closed' is of the wrong type"),
    ],
)
def test_a_malformed_payload_is_refused_with_the_field_named(body: Any, problem: str) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        desk_observations(make_envelope("workspace.switch.m-1a2b", body))


def test_the_domain_ships_the_rules_and_extractors() -> None:
    assert DOMAIN.default_rules == (RULES,)
    assert DOMAIN.extractors() is EXTRACTORS
    rules = load_rules(DOMAIN.default_rules)
    assert [(r.name, str(r.severity)) for r in rules] == [
        ("context_switching", "warning"),
        ("idle_long", "info"),
        ("deep_work", "success"),
    ]
    RuleService(MemoryBus(), rules, EXTRACTORS)  # every rule is read by an extractor


# -- the rules service on the bus -----------------------------------------------------------


class Recorder:
    """Below the warm-tier seam: keeps what the service appends."""

    def __init__(self) -> None:
        self.kept: list[Record] = []

    async def append_records(self, records: Sequence[Record]) -> None:
        self.kept.extend(records)


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    b = MemoryBus()
    await b.start()
    yield b
    await b.close()


async def test_a_scripted_session_on_the_bus_fires_all_three_rules(bus: MemoryBus) -> None:
    """Published as the aggregator publishes them, evaluated by the rules service; malformed
    events are skipped and the service carries on."""
    recorder, capture = Recorder(), await Capture.start(bus, "alerts.>")
    service = RuleService(bus, load_rules([RULES]), EXTRACTORS, recorder)
    await service.start()
    runner = asyncio.create_task(service.run())
    s = Session()
    script = [s.switch(0, workspace="Code", task="Project X")]
    script += [s.heartbeat(t) for t in range(600, 5401, 600)]
    script += [s.heartbeat(5410)]  # deep work
    script += [hop(s, 5410 + 10 * n, n) for n in range(1, 12)]  # context switching
    script += [s.switch(5600, idle=True, idle_ms=300_000)]
    script += [s.heartbeat(7410, idle_ms=2_110_000)]  # idle > 30 min
    script += [s.switch(7420, idle=False)]
    await bus.publish("workspace.switch.bad", {"machine": 7})
    for env in script:
        await bus.publish(env.topic, env.payload, event_id=env.id, time_ms=env.time_ms)
    await service.stop()
    await runner
    transitions = [(r.body["rule"], r.body["state"], r.time_ms) for r in recorder.kept]
    assert transitions == [
        ("deep_work", "firing", ms(5410)),
        ("deep_work", "resolved", ms(5420)),
        ("context_switching", "firing", ms(5520)),
        ("idle_long", "firing", ms(7410)),
        ("idle_long", "resolved", ms(7420)),
    ]
    published = await capture.wait_for(
        lambda e: e.payload["state"] == "resolved" and e.payload["rule"] == "idle_long"
    )
    assert published.topic == "alerts.idle_long"
    assert [(e.topic, e.payload["state"]) for e in capture.events] == [
        (f"alerts.{rule}", state) for rule, state, _ in transitions
    ]
    assert [e.rule for e in service.active()] == ["context_switching"]
    await capture.close()
