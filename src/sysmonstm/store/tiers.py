"""The resolution tiers, in a module of their own: the command line names them without
loading numpy (``store.model`` re-exports ``Tier``)."""

from __future__ import annotations

import enum


class Tier(enum.StrEnum):
    """Resolution tiers, finest first. ``HOT`` is the in-memory recent window."""

    HOT = "hot"
    RAW = "raw"
    M1 = "1m"
    H1 = "1h"

    @property
    def step_ms(self) -> int:
        """Bucket width of a rollup tier (0 for the raw tiers, whose step is the source's)."""
        return {Tier.M1: 60_000, Tier.H1: 3_600_000}.get(self, 0)
