"""The one rule engine: thresholds, windows, ``for``, hysteresis and absence over events.

Domain-neutral: domains turn bus envelopes into ``Observation``s with an ``Extractor``; rules
are declared in TOML (``load_rules``); ``Engine`` is the pure state machine and
``RuleService`` wires it to the bus and the warm tier.
"""

from sysmonstm.rules.engine import Clock, Engine, EngineStats, wall_clock_ms
from sysmonstm.rules.loader import load_rules, parse_rules
from sysmonstm.rules.model import (
    Aggregate,
    AlertEvent,
    AlertState,
    Extractor,
    Observation,
    Operator,
    Rule,
    Severity,
    Window,
)
from sysmonstm.rules.service import RuleService, alert_topic

__all__ = [
    "Aggregate",
    "AlertEvent",
    "AlertState",
    "Clock",
    "Engine",
    "EngineStats",
    "Extractor",
    "Observation",
    "Operator",
    "Rule",
    "RuleService",
    "Severity",
    "Window",
    "alert_topic",
    "load_rules",
    "parse_rules",
    "wall_clock_ms",
]
