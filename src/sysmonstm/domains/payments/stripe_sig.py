"""Stripe's ``Stripe-Signature`` header: verify it on the raw body, and make one (tests, the
simulator).

The header is ``t=<unix seconds>,v1=<hex>[,v1=<hex>…]`` (other schemes such as ``v0`` are
ignored, as Stripe's libraries do). Each ``v1`` is ``HMAC-SHA256(secret, f"{t}.{body}")`` in
hex; during a secret rotation Stripe sends one per active secret. The body verifies when any
``v1`` matches any configured secret (compared in constant time) and ``t`` lies within
``tolerance_s`` of now in either direction (Stripe's libraries check only the past; a
timestamp from the future is as much a forgery or a broken clock).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from sysmonstm.errors import InvalidInputError

HEADER = "Stripe-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300.0
_MAX_HEADER = 4096


class SignatureError(InvalidInputError):
    """A webhook's signature does not verify; ``code`` says why for the JSON error."""

    def __init__(self, reason: str, code: str = "invalid_signature") -> None:
        super().__init__(reason)
        self.error_code = code


def _mac(secret: str, timestamp: int, payload: bytes) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secrets: str | Sequence[str], timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` value for ``payload``, one ``v1`` per secret (as Stripe signs
    during a rotation), at ``timestamp`` (default: now)."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    return ",".join([f"t={t}", *(f"{SCHEME}={_mac(k, t, payload)}" for k in keys)])


def parse_header(header: str) -> tuple[int, list[str]]:
    """``(t, [v1 values])`` of a header; ``SignatureError`` when it is malformed."""
    if not header or len(header) > _MAX_HEADER:
        raise SignatureError(f"missing or oversized {HEADER} header", "missing_signature")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {HEADER} header", "malformed_signature")
        if key == "t":
            if not value.isdigit() or timestamp is not None:
                raise SignatureError(f"{HEADER}: bad or repeated timestamp", "malformed_signature")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError(f"{HEADER} header has no timestamp", "malformed_signature")
    if not signatures:
        raise SignatureError(f"{HEADER} header has no v1 signature", "malformed_signature")
    return timestamp, signatures


def verify(
    payload: bytes,
    header: str,
    secrets: Sequence[str],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check ``header`` against the raw ``payload``; the signed timestamp when it holds.

    Raises ``SignatureError`` (never naming a secret) for a malformed header, a timestamp
    further than ``tolerance_s`` from ``now`` either way, or no matching signature."""
    if not secrets:
        raise SignatureError("no Stripe webhook secret is configured", "not_configured")
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"{HEADER} timestamp {timestamp} is outside the {tolerance_s:.0f} s tolerance",
            "timestamp_out_of_tolerance",
        )
    matched = False
    for secret in secrets:
        expected = _mac(secret, timestamp, payload)
        for candidate in signatures:
            # no early exit: every pair is compared, so timing tells nothing about which
            matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise SignatureError(f"no {HEADER} v1 signature matches the body and the secrets")
    return timestamp
