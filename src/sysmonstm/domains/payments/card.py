"""Card data, PCI-minded: a card number (PAN) becomes a keyed fingerprint, a BIN and a last
four, and is dropped; ``scrub`` masks anything PAN-shaped in text bound for a log or a field.

The fingerprint is ``HMAC-SHA256(card key, PAN digits)`` in hex: stable for one card under one
key (velocity rules and lists count on it), useless without the key (a plain hash of a PAN is
brute-forced in minutes: there are only about 10^9 numbers per BIN). A processor's own card
fingerprint (Stripe's ``card.fingerprint``) goes through the same HMAC, prefixed with the
processor's name (``"stripe:" + fingerprint``) so our fingerprint stays keyed; a card seen
through two processors therefore has two fingerprints, one per processor.

The BIN is the first 8 digits of a PAN of 16 or more digits and the first 6 of a shorter one
(what PCI DSS allows to be kept next to the last four).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from sysmonstm.errors import ConfigError, InvalidInputError

MIN_PAN, MAX_PAN = 13, 19
NETWORK_DIGITS = "23456"  # first digits of the card networks (Mastercard 2/5, Amex 3, Visa 4 …)
MASK_TEMPLATE = "[card ****{last4}]"
# 13 to 19 digits, optionally grouped by single spaces or dashes, not inside a longer number
_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")


@dataclass(frozen=True, slots=True)
class CardRef:
    """What may be kept of a card: never the number itself."""

    fingerprint: str
    bin: str = ""
    last4: str = ""


def load_card_key(key: SecretStr | None, key_file: Path | None) -> bytes:
    """The fingerprint key from ``payments.card_key`` or the file ``payments.card_key_file``
    (its bytes, surrounding whitespace stripped); ``ConfigError`` when neither gives one of at
    least 16 bytes. The key is never part of a message."""
    if key is not None:
        raw = key.get_secret_value().encode()
    elif key_file is not None:
        try:
            raw = key_file.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"payments.card_key_file {key_file}: {exc.strerror}") from exc
    else:
        raise ConfigError("payments.card_key or payments.card_key_file must be set")
    if len(raw) < 16:
        raise ConfigError("the card fingerprint key must be at least 16 bytes")
    return raw


def luhn_ok(digits: str) -> bool:
    """Whether ``digits`` (only digits) pass the Luhn check."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_pan(text: str) -> bool:
    """Whether ``text`` (digits, maybe grouped by spaces or dashes) is a plausible card number:
    13 to 19 digits starting with a card network's digit (2 to 6) and passing Luhn. Unix
    millisecond times (starting with 1 until 2033) and most order numbers are not."""
    digits = re.sub(r"[ -]", "", text)
    return MIN_PAN <= len(digits) <= MAX_PAN and digits[:1] in NETWORK_DIGITS and luhn_ok(digits)


def keyed(key: bytes, value: str) -> str:
    """``HMAC-SHA256(key, value)`` as hex."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def from_pan(pan: str, key: bytes) -> CardRef:
    """Fingerprint, BIN and last four of a card number; ``InvalidInputError`` (naming only its
    last four) when ``is_pan`` says it is not one."""
    digits = re.sub(r"[ -]", "", pan.strip())
    if not (digits.isdigit() and is_pan(digits)):
        raise InvalidInputError(f"card number ending {digits[-4:]!r} is not a valid PAN")
    bin_len = 8 if len(digits) >= 16 else 6
    return CardRef(keyed(key, digits), digits[:bin_len], digits[-4:])


def from_processor_fingerprint(processor: str, fingerprint: str, key: bytes) -> str:
    """Our keyed fingerprint of a processor's own card fingerprint."""
    return keyed(key, f"{processor}:{fingerprint}")


def find_pans(text: str) -> Iterator[str]:
    """The plausible card numbers in ``text``, digits only, in order."""
    for m in _CANDIDATE.finditer(text):
        if is_pan(m.group()):
            yield re.sub(r"[ -]", "", m.group())


def scrub(text: str) -> str:
    """``text`` with every plausible card number replaced by ``[card ****1234]``.

    Plausible is what ``is_pan`` says, so timestamps and order numbers that fail it stay
    readable; the few that pass are masked too, which errs safe."""

    def mask(m: re.Match[str]) -> str:
        if not is_pan(m.group()):
            return m.group()
        return MASK_TEMPLATE.format(last4=re.sub(r"[ -]", "", m.group())[-4:])

    return _CANDIDATE.sub(mask, text)
