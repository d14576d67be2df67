"""The envelope every bus message travels in, and its wire encoding (msgpack via msgspec)."""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """One event: a unique id (replays are harmless), where it goes, who sent it, when, what.

    ``time_ms`` is Unix milliseconds (UTC). ``payload`` is anything msgspec encodes: dicts,
    lists, numbers, strings, Structs.
    """

    id: str
    topic: str
    source: str
    time_ms: int
    payload: Any


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Envelope)
_JSON_ENCODER = msgspec.json.Encoder()


def new_event_id() -> str:
    """A 128-bit id that sorts by creation time (48 bits of ms, then 80 random bits)."""
    ms = time.time_ns() // 1_000_000
    return f"{ms:012x}{os.urandom(10).hex()}"


def make_envelope(
    topic: str,
    payload: Any,
    *,
    source: str = "",
    event_id: str | None = None,
    time_ms: int | None = None,
) -> Envelope:
    """Build an envelope, filling the id and the time when not given."""
    return Envelope(
        id=event_id or new_event_id(),
        topic=topic,
        source=source,
        time_ms=time_ms if time_ms is not None else time.time_ns() // 1_000_000,
        payload=payload,
    )


def encode_envelope(envelope: Envelope) -> bytes:
    """Envelope to msgpack bytes (what network backends put on the wire)."""
    return _ENCODER.encode(envelope)


def decode_envelope(data: bytes) -> Envelope:
    """msgpack bytes to an envelope; raises ``msgspec.DecodeError`` on garbage."""
    return _DECODER.decode(data)


def envelope_json(envelope: Envelope) -> bytes:
    """Envelope to JSON bytes (what browsers receive)."""
    return _JSON_ENCODER.encode(envelope)
