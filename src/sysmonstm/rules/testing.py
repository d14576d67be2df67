"""Test helpers shipped with the rule engine: a clock tests move by hand."""

from __future__ import annotations


class ManualClock:
    """A clock (Unix ms) that only moves when told; pass it as ``clock=`` to the engine."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> int:
        """Move forward by ``seconds``; return the new time."""
        self.now_ms += round(seconds * 1000)
        return self.now_ms

    def set(self, now_ms: int) -> None:
        """Jump to ``now_ms``."""
        self.now_ms = now_ms
