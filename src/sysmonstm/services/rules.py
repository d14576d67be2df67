"""The rules service: the one rule engine over the bus, with every domain's extractors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from sysmonstm.rules.loader import load_rules
from sysmonstm.rules.model import Extractor, Rule
from sysmonstm.rules.service import RuleService
from sysmonstm.runtime import Core

log = structlog.get_logger(__name__)


def rule_files(core: Core) -> list[Path]:
    """The domains' shipped rules (unless turned off), then the configured files."""
    files: list[Path] = []
    if core.settings.rules.defaults:
        for domain in core.domains:
            files.extend(domain.default_rules)
    files.extend(core.settings.rules.files)
    return files


def extractors_of(core: Core) -> dict[str, Extractor]:
    found: dict[str, Extractor] = {}
    for domain in core.domains:
        found.update(domain.extractors())
    return found


def load_configured_rules(core: Core) -> list[Rule]:
    """Every rule this process evaluates (``ConfigError`` naming file, rule and key)."""
    return load_rules(rule_files(core))


async def serve_rules(
    core: Core, stop: asyncio.Event, started: asyncio.Event | None = None
) -> RuleService:
    """Evaluate rules until ``stop`` is set; return the service (for its active alerts)."""
    rules = load_configured_rules(core)
    durable = "rules" if "durable" in core.bus.capabilities else None
    service = RuleService(core.bus, rules, extractors_of(core), core.warm, durable=durable)
    await service.start()
    log.info("rules loaded", rules=len(rules), files=[str(f) for f in rule_files(core)])
    if started is not None:
        started.set()
    runner = asyncio.create_task(service.run(), name="rules")
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([runner, waiter], return_when=asyncio.FIRST_COMPLETED)
    await service.stop()
    waiter.cancel()
    await runner
    return service
