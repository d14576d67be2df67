"""Personal fields encrypted at rest: AES-256-GCM with the key of ``payments.pii_key``.

A sealed value (``seal``; ``encrypt`` is the same) is text,
``"v1:" + base64url(nonce ‖ ciphertext ‖ tag)``, with a fresh random 96-bit nonce per value.
``aad`` (associated data, e.g. the event id) binds a value to its row: a ciphertext moved to
another row does not open there. Opening fails with ``PiiError`` when the key, the data or
the binding is wrong; nothing partial is ever returned.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from sysmonstm.errors import ConfigError, SysmonstmError

if TYPE_CHECKING:
    from sysmonstm.config import PaymentsSettings

PREFIX = "v1:"
UNREADABLE = "[unreadable]"
_NONCE = 12


class PiiError(SysmonstmError):
    """A sealed value does not open with this key (wrong key, altered, or moved)."""


def load_pii_key(key: SecretStr | None, key_file: Path | None) -> bytes:
    """The 32-byte key from ``payments.pii_key`` or ``payments.pii_key_file`` (base64 text
    either way); ``ConfigError`` when missing or not 32 bytes."""
    if key is not None:
        text = key.get_secret_value()
    elif key_file is not None:
        try:
            text = key_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"payments.pii_key_file {key_file} cannot be read") from exc
    else:
        raise ConfigError("payments.pii_key or payments.pii_key_file must be set")
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("the PII key is not base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"the PII key must be 32 bytes (AES-256), not {len(raw)}")
    return raw


def new_key() -> str:
    """A fresh key as base64 text, fit for ``payments.pii_key``."""
    return base64.b64encode(os.urandom(32)).decode()


class PiiCipher:
    """Seals and opens personal fields with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("the PII key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, aad: str = "") -> str:
        """``plaintext`` encrypted; the empty string stays empty (nothing to hide)."""
        if not plaintext:
            return ""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), aad.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, sealed: str, aad: str = "") -> str:
        """The plaintext of ``seal(plaintext, aad)``; ``PiiError`` if it does not open."""
        if not sealed:
            return ""
        if not sealed.startswith(PREFIX):
            raise PiiError("not a sealed value (no v1: prefix)")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(PREFIX) :].encode())
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError) as exc:
            raise PiiError("sealed value does not open: wrong key, altered or moved") from exc

    encrypt = seal
    decrypt = unseal


def cipher_for(payments: PaymentsSettings) -> PiiCipher | None:
    """The cipher of ``payments.pii_key`` / ``pii_key_file``; ``None`` when neither is set
    (then personal fields are not kept at all); ``ConfigError`` when the key is unusable."""
    if payments.pii_key is None and payments.pii_key_file is None:
        return None
    return PiiCipher(load_pii_key(payments.pii_key, payments.pii_key_file))


def reveal_for(payments: PaymentsSettings) -> Callable[[str], str]:
    """Clear text of a stored personal field, for the roles that may see it: ``""`` when no
    key is configured, ``UNREADABLE`` when a value does not open with the key."""
    cipher = cipher_for(payments)

    def reveal(stored: str) -> str:
        if cipher is None or not stored:
            return ""
        try:
            return cipher.unseal(stored)
        except PiiError:
            return UNREADABLE

    return reveal
