"""Card data: keyed fingerprints, BIN and last 4, Luhn, and scrubbing card numbers from text."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from pydantic import SecretStr

from sysmonstm.domains.payments import card
from sysmonstm.errors import ConfigError, InvalidInputError

KEY = b"k" * 32
VISA = "4242424242424242"
AMEX = "378282246310005"


def test_luhn() -> None:
    """Known test numbers pass; a changed digit fails."""
    assert card.luhn_ok(VISA)
    assert card.luhn_ok(AMEX)
    assert not card.luhn_ok("4242424242424241")
    assert not card.luhn_ok("42a2")


def test_from_pan_keeps_only_fingerprint_bin_last4() -> None:
    """A 16-digit PAN keeps an 8-digit BIN, a 15-digit one a 6-digit BIN; the fingerprint is
    HMAC-SHA256 under the key, the same with spaces or dashes, different under another key."""
    ref = card.from_pan(VISA, KEY)
    assert ref.bin == "42424242"
    assert ref.last4 == "4242"
    assert ref.fingerprint == hmac.new(KEY, VISA.encode(), hashlib.sha256).hexdigest()
    assert card.from_pan("4242 4242-4242 4242", KEY) == ref
    assert card.from_pan(VISA, b"x" * 32).fingerprint != ref.fingerprint
    assert VISA not in repr(ref)
    assert card.from_pan(AMEX, KEY).bin == "378282"


def test_from_pan_refuses_non_cards_without_echoing_them() -> None:
    """A number failing Luhn is refused; the message names only its last four."""
    with pytest.raises(InvalidInputError) as info:
        card.from_pan("4242424242424241", KEY)
    assert "4242424242424241" not in str(info.value)


def test_scrub_masks_card_numbers_and_leaves_other_digits() -> None:
    """Card numbers (grouped or not) are masked to their last four; ms timestamps, short
    numbers and Luhn failures stay."""
    text = f"pay {VISA} and 4242-4242-4242-4242 and {AMEX} at 1733360000000 order 12345"
    out = card.scrub(text)
    assert VISA not in out
    assert AMEX not in out
    assert "4242-4242-4242-4242" not in out
    assert out.count("[card ****4242]") == 2
    assert "[card ****0005]" in out
    assert "1733360000000" in out
    assert "12345" in out
    assert card.scrub("4242424242424241") == "4242424242424241"
    assert list(card.find_pans(text)) == [VISA, VISA, AMEX]


def test_processor_fingerprint_is_keyed_and_namespaced() -> None:
    """Stripe's fingerprint goes through our HMAC: not itself, stable, key-dependent."""
    ours = card.from_processor_fingerprint("stripe", "Xt5EWLLDS7FJjR1c", KEY)
    assert ours == card.keyed(KEY, "stripe:Xt5EWLLDS7FJjR1c")
    assert len(ours) == 64
    assert ours != card.from_processor_fingerprint("stripe", "Xt5EWLLDS7FJjR1c", b"y" * 32)


def test_card_key_from_setting_or_file(tmp_path: Path) -> None:
    """The key comes from the setting, else the file; missing or short is a ConfigError."""
    assert card.load_card_key(SecretStr("s" * 20), None) == b"s" * 20
    path = tmp_path / "card.key"
    path.write_bytes(b"f" * 32 + b"\n")
    assert card.load_card_key(None, path) == b"f" * 32
    with pytest.raises(ConfigError, match="must be set"):
        card.load_card_key(None, None)
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        card.load_card_key(SecretStr("short"), None)
    with pytest.raises(ConfigError, match="card_key_file"):
        card.load_card_key(None, tmp_path / "missing")
