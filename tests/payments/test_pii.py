"""Personal fields at rest: AES-256-GCM seal and unseal with the configured key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from sysmonstm.config import PaymentsSettings
from sysmonstm.domains.payments import pii
from sysmonstm.errors import ConfigError


def test_seal_round_trip_hides_the_text() -> None:
    """A sealed value opens to the original, differs each time, and does not show it."""
    cipher = pii.PiiCipher(b"\x01" * 32)
    a, b = cipher.seal("jane@example.com"), cipher.seal("jane@example.com")
    assert a != b
    assert a.startswith("v1:")
    assert "jane" not in a
    assert cipher.unseal(a) == cipher.unseal(b) == "jane@example.com"
    assert cipher.seal("") == ""
    assert cipher.unseal("") == ""
    assert cipher.decrypt(cipher.encrypt("Jörg Ünal")) == "Jörg Ünal"


def test_wrong_key_altered_or_moved_values_do_not_open() -> None:
    """Another key, a flipped byte, or other associated data: PiiError, nothing partial."""
    cipher = pii.PiiCipher(b"\x01" * 32)
    sealed = cipher.seal("Jane Doe", aad="stripe:evt_1")
    with pytest.raises(pii.PiiError):
        pii.PiiCipher(b"\x02" * 32).unseal(sealed, aad="stripe:evt_1")
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    raw[-1] ^= 1
    with pytest.raises(pii.PiiError):
        cipher.unseal("v1:" + base64.urlsafe_b64encode(bytes(raw)).decode(), aad="stripe:evt_1")
    with pytest.raises(pii.PiiError):
        cipher.unseal(sealed, aad="stripe:evt_2")
    with pytest.raises(pii.PiiError, match="no v1: prefix"):
        cipher.unseal("Jane Doe")


def test_key_from_settings_or_file(tmp_path: Path) -> None:
    """The key is base64 of 32 bytes, from the setting or a file; anything else is refused."""
    key = pii.new_key()
    assert len(pii.load_pii_key(SecretStr(key), None)) == 32
    path = tmp_path / "pii.key"
    path.write_text(key + "\n")
    assert pii.load_pii_key(None, path) == base64.b64decode(key)
    with pytest.raises(ConfigError, match="must be set"):
        pii.load_pii_key(None, None)
    with pytest.raises(ConfigError, match="32 bytes"):
        pii.load_pii_key(SecretStr(base64.b64encode(b"x" * 16).decode()), None)
    with pytest.raises(ConfigError, match="not base64"):
        pii.load_pii_key(SecretStr("%%%"), None)


def test_reveal_for_settings() -> None:
    """With a key, stored values are revealed; unreadable ones say so; without, nothing."""
    key = pii.new_key()
    settings = PaymentsSettings(pii_key=SecretStr(key))
    sealed = pii.PiiCipher(base64.b64decode(key)).seal("jane@example.com")
    assert pii.reveal_for(settings)(sealed) == "jane@example.com"
    assert pii.reveal_for(settings)("v1:AAAA") == pii.UNREADABLE
    assert pii.reveal_for(PaymentsSettings())(sealed) == ""
    assert pii.cipher_for(PaymentsSettings()) is None
