"""The domains carried by the core. The core finds them here by name, never by import."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sysmonstm.domain import Domain

#: name -> "module:attribute" of its ``Domain`` description; loaded on demand.
REGISTRY: dict[str, str] = {
    "metrics": "sysmonstm.domains.metrics.domain:DOMAIN",
    "deskmeter": "sysmonstm.domains.deskmeter.domain:DOMAIN",
    "payments": "sysmonstm.domains.payments.domain:DOMAIN",
}


def load_domain(name: str) -> Domain:
    """Import and return the domain registered as ``name``."""
    module_name, _, attr = REGISTRY[name].partition(":")
    domain: Domain = getattr(importlib.import_module(module_name), attr)
    return domain


def load_domains(names: list[str] | None = None) -> list[Domain]:
    """Every registered domain (or the named ones), in registry order."""
    return [load_domain(n) for n in (names if names is not None else list(REGISTRY))]
