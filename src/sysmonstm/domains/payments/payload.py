"""Reading processors' untrusted JSON: typed look-ups, times, and text fit to keep.

Every reader here fails with ``InvalidInputError`` naming the field, never with a
``KeyError`` or ``TypeError``: a malformed payload is the sender's fault and gets a clear 400.
Free text that is kept (description, metadata, names) passes through ``card.scrub`` and a
length cap first, so a card number pasted into a note never leaves the adapter.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Iterator, Mapping
from typing import Any

from sysmonstm.domains.payments.card import CardRef, find_pans, from_pan, scrub
from sysmonstm.errors import InvalidInputError

MAX_TEXT = 500  # characters kept of a free-text field
MAX_METADATA = 32  # metadata entries kept
MAX_ID = 255
MAX_BODY = 1024 * 1024  # bytes of a webhook body


def load_json(body: bytes, what: str) -> dict[str, Any]:
    """The JSON object of ``body``; ``InvalidInputError`` when it is not one."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{what}: body is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what}: body is not a JSON object")
    return value


def dig(obj: object, *path: str) -> object:
    """``obj[p0][p1]…``, or ``None`` where a step is missing or not an object."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def clean(value: str, limit: int = MAX_TEXT) -> str:
    """``value`` on one line (whitespace runs become one space, other unprintable characters
    are dropped), scrubbed of card numbers, at most ``limit`` characters."""
    flat = "".join(ch for ch in " ".join(value.split()) if ch.isprintable())
    return scrub(flat)[:limit]


def text(obj: object, *path: str, limit: int = MAX_TEXT) -> str:
    """A string at ``path`` (numbers as text), ``clean``; ``""`` when absent."""
    value = dig(obj, *path)
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float | str):
        return clean(str(value), limit)
    return ""


def email(obj: object, *path: str) -> str:
    """An e-mail address at ``path`` (one ``@``, at most 254 characters); ``""`` otherwise."""
    value = text(obj, *path, limit=254)
    return value if value.count("@") == 1 and value[0] != "@" and value[-1] != "@" else ""


def required(obj: object, *path: str, limit: int = MAX_ID) -> str:
    """A non-empty string at ``path``; ``InvalidInputError`` naming it otherwise."""
    value = dig(obj, *path)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{'.'.join(path)} is missing or not a string")
    if not value.strip().isprintable():
        raise InvalidInputError(f"{'.'.join(path)} holds unprintable characters")
    if len(value) > limit:
        raise InvalidInputError(f"{'.'.join(path)} is longer than {limit} characters")
    return value.strip()


def integer(obj: object, *path: str) -> int:
    """A non-negative integer at ``path``."""
    value = dig(obj, *path)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{'.'.join(path)} is missing or not a non-negative integer")
    return value


def country(obj: object, *path: str) -> str:
    """An ISO 3166-1 alpha-2 code at ``path``, upper case; ``""`` when absent or not one."""
    value = text(obj, *path)
    return value.upper() if len(value) == 2 and value.isalpha() else ""


def ip_text(obj: object, *path: str) -> str:
    """An IP address at ``path`` in its canonical form; ``""`` when absent or not one."""
    value = dig(obj, *path)
    if not isinstance(value, str):
        return ""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return ""


def iso_ms(value: str, field: str) -> int:
    """Unix ms of an ISO 8601 time (``2024-05-01T10:00:00Z``, offsets allowed; a date alone
    is its midnight UTC); ``InvalidInputError`` naming ``field`` otherwise."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{field}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def metadata(obj: object, extra: Mapping[str, str] = {}) -> dict[str, str]:
    """String entries of a metadata object (scrubbed, capped) plus ``extra``."""
    out: dict[str, str] = {}
    if isinstance(obj, Mapping):
        for key, value in list(obj.items())[:MAX_METADATA]:
            if isinstance(key, str) and isinstance(value, str | int | float):
                out[clean(key, 64)] = clean(str(value))
    out.update(extra)
    return out


def strings(obj: object) -> Iterator[str]:
    """Every string anywhere in a JSON value (keys included)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from strings(value)
    elif isinstance(obj, int) and not isinstance(obj, bool) and 13 <= len(str(obj)) <= 19:
        yield str(obj)  # a card number sent as a JSON number is still a card number


def pan_in(obj: object, key: bytes) -> CardRef | None:
    """The card of the first card number found anywhere in ``obj``, fingerprinted; ``None``
    when there is none. The number itself is not returned."""
    for value in strings(obj):
        for pan in find_pans(value):
            return from_pan(pan, key)
    return None
