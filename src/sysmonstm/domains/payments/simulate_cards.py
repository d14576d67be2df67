"""Test cards for the simulator: Luhn-valid numbers on known test BINs, with their issuer
country.

These numbers are public test numbers (Stripe's documented test BINs) completed with a Luhn
check digit; none is a real card. The simulator puts one into a payload only where it plays a
sloppy integration, so the adapters' duty to fingerprint and drop it can be checked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sysmonstm.domains.payments.card import luhn_ok

# (BIN, brand, issuer country): Stripe's per-country test cards start with these
TEST_BINS: tuple[tuple[str, str, str], ...] = (
    ("424242", "visa", "US"),
    ("400005", "visa", "US"),
    ("555555", "mastercard", "US"),
    ("400000", "visa", "US"),
    ("400008", "visa", "GB"),
    ("400002", "visa", "DE"),
    ("400003", "visa", "JP"),
    ("400007", "visa", "ES"),
    ("400001", "visa", "CA"),
    ("400004", "visa", "MX"),
    ("520082", "mastercard", "US"),
    ("601111", "discover", "US"),
)


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the one check digit that makes it pass Luhn."""
    for check in "0123456789":
        if luhn_ok(prefix + check):
            return prefix + check
    raise AssertionError("unreachable: one check digit always fits")


@dataclass(frozen=True, slots=True)
class SimCard:
    """A simulated card: its number (only sloppy payloads carry it), the processor-side
    fingerprint a processor would send instead, and what the hub may keep."""

    pan: str
    brand: str
    country: str
    processor_fingerprint: str  # like Stripe's card.fingerprint: stable, not the number

    @property
    def bin(self) -> str:
        return self.pan[:6]

    @property
    def last4(self) -> str:
        return self.pan[-4:]


def make_cards(rng: random.Random, count: int) -> list[SimCard]:
    """``count`` distinct 16-digit test cards spread over the test BINs."""
    cards: dict[str, SimCard] = {}
    while len(cards) < count:
        bin_, brand, country = rng.choice(TEST_BINS)
        body = "".join(rng.choice("0123456789") for _ in range(9))
        pan = luhn_complete(bin_ + body)
        fp = "".join(
            rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
            for _ in range(16)
        )
        cards.setdefault(pan, SimCard(pan, brand, country, fp))
    return list(cards.values())
