"""The metrics domain as the core sees it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sysmonstm.domain import Domain, Ingest

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from fastapi import APIRouter

    from sysmonstm.rules.model import Extractor
    from sysmonstm.runtime import Core


def _ingest(core: Core) -> Ingest:
    from sysmonstm.domains.metrics.ingest import MetricsIngest

    return MetricsIngest(core)


def _routers(core: Core) -> Sequence[APIRouter]:
    from sysmonstm.domains.metrics.api import routers

    return routers(core)


def _extractors() -> Mapping[str, Extractor]:
    from sysmonstm.domains.metrics.observe import EXTRACTORS

    return EXTRACTORS


DOMAIN = Domain(
    name="metrics",
    ingest=_ingest,
    api_routers=_routers,
    extractors=_extractors,
    default_rules=(Path(__file__).with_name("rules.toml"),),
)
