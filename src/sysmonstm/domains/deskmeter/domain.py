"""The Deskmeter domain as the core sees it."""

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
    from sysmonstm.domains.deskmeter.ingest import DeskmeterIngest

    return DeskmeterIngest(core)


def _routers(core: Core) -> Sequence[APIRouter]:
    from sysmonstm.domains.deskmeter.api import routers

    return routers(core)


def _root_routers(core: Core) -> Sequence[APIRouter]:
    from sysmonstm.domains.deskmeter.aw_api import routers

    return routers(core)


def _extractors() -> Mapping[str, Extractor]:
    from sysmonstm.domains.deskmeter.observe import EXTRACTORS

    return EXTRACTORS


DOMAIN = Domain(
    name="deskmeter",
    ingest=_ingest,
    api_routers=_routers,
    root_routers=_root_routers,
    extractors=_extractors,
    default_rules=(Path(__file__).with_name("rules.toml"),),
)
