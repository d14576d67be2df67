"""How hot-tier documents are encoded, the same way by every backend.

A document's body is canonical JSON (keys sorted), so "the same document" means the same
bytes everywhere: the memory backend orders and deduplicates recent documents exactly as
Redis orders and deduplicates sorted-set members (by time, then by these bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from sysmonstm.store.hot import HotDocument

_ENCODE = msgspec.json.Encoder(order="sorted")
_MEMBER = msgspec.json.Decoder(tuple[int, str, dict[str, Any]])
_BODY = msgspec.json.Decoder(dict[str, Any])


def _canonical(value: object) -> bytes:
    try:
        return _ENCODE.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ValueError(f"a hot document must be JSON: {exc}") from exc


def canonical_body(body: Mapping[str, object]) -> bytes:
    """``body`` as canonical JSON; raises ``ValueError`` if it is not JSON-compatible."""
    return _canonical(body)


def member(doc: HotDocument) -> bytes:
    """A recent document as canonical JSON ``[time_ms, key, body]`` (the time is also the
    sorted-set score; inside the member it keeps equal bodies at other times apart)."""
    return _canonical((doc.time_ms, doc.key, doc.body))


def from_member(packed: bytes) -> HotDocument:
    time_ms, key, body = _MEMBER.decode(packed)
    return HotDocument(key, time_ms, body)


def state_value(doc: HotDocument) -> bytes:
    """A current state as stored: ``<time_ms> <canonical JSON body>`` (the time first, so a
    script can compare it without decoding JSON)."""
    return str(doc.time_ms).encode() + b" " + canonical_body(doc.body)


def from_state(key: str, value: bytes) -> HotDocument:
    time, _, body = value.partition(b" ")
    return HotDocument(key, int(time), _BODY.decode(body))


def normalized(doc: HotDocument) -> HotDocument:
    """``doc`` as a backend reads it back (its body through canonical JSON)."""
    return HotDocument(doc.key, doc.time_ms, _BODY.decode(canonical_body(doc.body)))
