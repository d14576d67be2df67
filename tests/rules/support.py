"""Short ways to drive the engine in tests: TOML in, transitions out, time by hand."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from typing import Any

from sysmonstm.rules import AlertEvent, Engine, Observation, parse_rules
from sysmonstm.rules.testing import ManualClock

T0 = 1_700_000_000_000
TOPIC = "t.x"


def ms(seconds: float) -> int:
    """Absolute time ``seconds`` after ``T0``."""
    return T0 + round(seconds * 1000)


def rule_toml(**keys: Any) -> str:
    """One ``[[rule]]`` table from keyword arguments (``for_`` stands for ``for``)."""
    lines = ["[[rule]]"]
    defaults = {"name": "r", "topic": "t.>", "field": "v"}
    for name, value in {**defaults, **keys}.items():
        if value is None:
            continue
        key = name.rstrip("_")
        if isinstance(value, dict):
            inner = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {inner} }}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


class Driver:
    """An engine on a manual clock that follows the observation times it is fed."""

    def __init__(self, toml: str, **engine_options: Any) -> None:
        self.clock = ManualClock(T0)
        self.engine = Engine(parse_rules(textwrap.dedent(toml)), clock=self.clock, **engine_options)
        self.events: list[AlertEvent] = []

    def at(
        self,
        seconds: float,
        value: Any = None,
        *,
        key: str = "h1",
        topic: str = TOPIC,
        **fields: Any,
    ) -> list[AlertEvent]:
        """Observe ``value`` (as field ``v``) and ``fields`` at ``T0 + seconds``."""
        if value is not None:
            fields["v"] = value
        self.clock.set(max(self.clock(), ms(seconds)))
        out = self.engine.observe(topic, [Observation(key, ms(seconds), fields)])
        self.events.extend(out)
        return out

    def series(
        self, values: Iterable[Any], *, start: float = 0, step: float = 1, key: str = "h1"
    ) -> list[AlertEvent]:
        """Observe ``values`` one ``step`` apart from ``start``."""
        out: list[AlertEvent] = []
        for i, value in enumerate(values):
            out += self.at(start + i * step, value, key=key)
        return out

    def tick(self, seconds: float) -> list[AlertEvent]:
        """Move the engine clock to ``T0 + seconds`` and tick."""
        self.clock.set(ms(seconds))
        out = self.engine.tick()
        self.events.extend(out)
        return out


def states(events: Iterable[AlertEvent]) -> list[str]:
    """The states of ``events`` in order, as plain strings."""
    return [str(e.state) for e in events]
