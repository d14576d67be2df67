"""Deskmeter validation (wire DeskBatch → model) and task rules: what is refused and why."""

from __future__ import annotations

import pytest

from sysmonstm.config import TaskRule
from sysmonstm.domains.deskmeter.model import DeskBatch, DeskEvent, EventKind, Machine
from sysmonstm.domains.deskmeter.tasks import TaskRules
from sysmonstm.domains.deskmeter.validate import DeskLimits, check_zone, desk_batch
from sysmonstm.errors import InvalidInputError
from sysmonstm.v1.deskmeter_pb2 import DeskEvent as WireEvent
from tests.deskmeter.wire import HEARTBEAT, event
from tests.deskmeter.wire import desk_batch as wire_batch

NOW = 1_796_400_000_000


def refused(raw: object, limits: DeskLimits | None = None) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        desk_batch(raw, NOW, limits)
    return info.value


def test_a_valid_batch_becomes_the_model_batch() -> None:
    raw = wire_batch(
        "m-1",
        7,
        [
            event(NOW - 2000, workspace="Mail", index=1, task="Project X"),
            event(NOW - 1000, HEARTBEAT, workspace="Mail", index=1, idle=True, idle_ms=400_000),
        ],
        host="laptop",
        heartbeat_ms=5000,
    )
    assert desk_batch(raw, NOW) == DeskBatch(
        Machine("m-1", "laptop", "Europe/Berlin"),
        7,
        (
            DeskEvent(
                NOW - 2000, EventKind.SWITCH, 1, "Mail", "Project X", False, 0, "Europe/Berlin"
            ),
            DeskEvent(
                NOW - 1000, EventKind.HEARTBEAT, 1, "Mail", "", True, 400_000, "Europe/Berlin"
            ),
        ),
        5000,
    )


def test_defaults_heartbeat_and_host() -> None:
    raw = wire_batch("m-1", 1, [event(NOW)], heartbeat_ms=0)
    raw.source.hostname = ""
    got = desk_batch(raw, NOW)
    assert got.heartbeat_ms == 10_000
    assert got.machine.host == "m-1"


def test_events_at_the_same_instant_are_in_order() -> None:
    raw = wire_batch("m-1", 1, [event(NOW), event(NOW, HEARTBEAT)])
    assert len(desk_batch(raw, NOW).events) == 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.ClearField("source"), "source.machine_id is required"),
        (lambda b: setattr(b.source, "machine_id", "bad id!"), "source.machine_id must be"),
        (lambda b: setattr(b.source, "hostname", "a\nb"), "source.hostname must be printable"),
        (lambda b: setattr(b, "sequence", 0), "sequence must be within"),
        (lambda b: b.ClearField("events"), "a batch holds 1..10000 events, not 0"),
        (lambda b: setattr(b, "heartbeat_ms", 50), "heartbeat_ms must be within 100..3600000"),
        (
            lambda b: setattr(b.events[0], "kind", WireEvent.KIND_UNSPECIFIED),
            "event 0: kind must be SWITCH or HEARTBEAT",
        ),
        (lambda b: setattr(b.events[1], "kind", 7), "event 1: kind must be SWITCH or HEARTBEAT"),
        (lambda b: setattr(b.events[0], "workspace_index", -1), "event 0: workspace_index"),
        (lambda b: setattr(b.events[0], "idle_ms", -5), "event 0: idle_ms must be within"),
        (lambda b: setattr(b.events[0], "workspace", "x" * 257), "event 0: workspace must be"),
        (lambda b: setattr(b.events[1], "task", "tab\there"), "event 1: task must be printable"),
        (
            lambda b: setattr(b.events[0], "time_zone", "Mars/Olympus"),
            "event 0: time_zone 'Mars/Olympus' is not an IANA time zone",
        ),
        (lambda b: setattr(b.events[0], "time_zone", ""), "event 0: time_zone '' is not an IANA"),
        (lambda b: setattr(b.events[0], "time_zone", "../../etc/passwd"), "not an IANA"),
        (
            lambda b: setattr(b.events[1], "time_unix_ms", NOW - 5000),
            f"event 1: time {NOW - 5000} ms is before the previous event's {NOW - 2000} ms",
        ),
        (
            lambda b: setattr(b.events[1], "time_unix_ms", NOW + 301_000),
            "event 1: time 1796400301000 ms is more than 300 s in the future",
        ),
        (
            lambda b: setattr(b.events[0], "time_unix_ms", NOW - 8 * 86_400_000),
            "event 0: time 1795708800000 ms is more than 604800 s in the past",
        ),
    ],
)
def test_bad_batches_are_refused_with_a_clear_reason(mutate: object, message: str) -> None:
    raw = wire_batch("m-1", 3, [event(NOW - 2000), event(NOW - 1000, HEARTBEAT)])
    mutate(raw)  # type: ignore[operator]
    exc = refused(raw)
    assert message in exc.reason
    assert exc.code == "INVALID_ARGUMENT"


def test_too_many_events_exhaust_the_batch_limit() -> None:
    raw = wire_batch("m-1", 1, [event(NOW - 10 + i, HEARTBEAT) for i in range(6)])
    exc = refused(raw, DeskLimits(max_events=5))
    assert exc.reason == "a batch holds 1..5 events, not 6"
    assert exc.code == "RESOURCE_EXHAUSTED"


def test_not_a_desk_batch_is_refused() -> None:
    assert refused(b"bytes").reason == "expected a DeskBatch"


def test_zones_are_checked_by_zoneinfo() -> None:
    assert check_zone("UTC") == "UTC"
    assert check_zone("America/Argentina/Buenos_Aires") == "America/Argentina/Buenos_Aires"
    with pytest.raises(InvalidInputError):
        check_zone("Europe/Nowhere")


def test_the_machine_zone_is_that_of_the_last_event() -> None:
    raw = wire_batch("m-1", 1, [event(NOW - 1, time_zone="UTC"), event(NOW, HEARTBEAT)])
    assert desk_batch(raw, NOW).machine.time_zone == "Europe/Berlin"


def batch_of(*events: DeskEvent) -> DeskBatch:
    return DeskBatch(Machine("m-1"), 1, events)


def ev(workspace: str, task: str = "") -> DeskEvent:
    return DeskEvent(NOW, EventKind.SWITCH, 0, workspace, task, False, 0, "UTC")


def test_task_rules_map_workspace_globs_in_order_and_leave_named_tasks_alone() -> None:
    rules = TaskRules(
        [
            TaskRule(workspace="Mail*", task="Email"),
            TaskRule(workspace="*Code*", task="Project X"),
            TaskRule(workspace="*", task="Other"),
        ]
    )
    got = rules.apply(
        batch_of(ev("Mailbox"), ev("My Code 2"), ev("Web"), ev("Mail", task="Support"))
    )
    assert [e.task for e in got.events] == ["Email", "Project X", "Other", "Support"]


def test_task_rules_are_case_sensitive_and_whole_name() -> None:
    rules = TaskRules([TaskRule(workspace="code", task="Project X")])
    assert rules.task_for("Code") == ""
    assert rules.task_for("code") == "Project X"
    assert rules.task_for("code 2") == ""


def test_no_rules_leave_the_batch_as_it_is() -> None:
    batch = batch_of(ev("Web"))
    assert TaskRules([]).apply(batch) is batch
