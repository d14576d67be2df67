"""Money normalization: ISO 4217 exponents, processors' exceptions, exact parsing, base rates."""

from __future__ import annotations

import pytest

from sysmonstm.domains.payments import money
from sysmonstm.domains.payments.money import CurrencyError


def test_iso_exponents_cover_the_known_shapes() -> None:
    """JPY has no minor unit, EUR two, KWD three, CLF four; lower case is accepted."""
    assert [money.exponent(c) for c in ("JPY", "eur", "KWD", "CLF")] == [0, 2, 3, 4]
    assert len(money.EXPONENTS) >= 150


def test_numeric_codes_map_to_alpha() -> None:
    """ISO numeric codes (as banks send them) become alpha codes, with or without zeros."""
    assert money.from_numeric("978") == "EUR"
    assert money.from_numeric("840") == "USD"
    assert money.from_numeric("36") == "AUD"
    with pytest.raises(CurrencyError, match="unknown ISO 4217 numeric"):
        money.from_numeric("999")
    with pytest.raises(CurrencyError, match="not an ISO 4217 numeric"):
        money.from_numeric("EUR")


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [("12.34", "USD", 1234), ("1000", "JPY", 1000), ("1.005", "KWD", 1005), ("0.1", "EUR", 10),
     ("7.10", "JPY", None), ("10.50", "EUR", 1050), ("12.3400", "USD", 1234)],
)  # fmt: skip
def test_parse_decimal_is_exact(text: str, code: str, minor: int | None) -> None:
    """Decimal strings become minor units exactly; trailing zeros past the exponent are fine,
    real digits past it are refused, never rounded."""
    if minor is None:
        with pytest.raises(CurrencyError, match="more than 0 decimals"):
            money.parse_decimal(text, code)
    else:
        assert money.parse_decimal(text, code) == minor


@pytest.mark.parametrize("text", ["-1.00", "1e3", "NaN", "1,00", "", " ", "0x10", "1.2.3"])
def test_parse_decimal_refuses_what_is_not_a_plain_amount(text: str) -> None:
    """Signs, exponents, NaN and separators are refused with a clear error."""
    with pytest.raises(CurrencyError, match="not a non-negative decimal"):
        money.parse_decimal(text, "USD")


def test_paypal_allows_no_decimals_for_huf_jpy_twd() -> None:
    """PayPal's HUF amount may not carry decimals though ISO gives HUF two."""
    places = money.processor_exponent("paypal", "HUF")
    assert places == 0
    assert money.parse_decimal("1500", "HUF", places=places) == 150000
    with pytest.raises(CurrencyError):
        money.parse_decimal("1500.50", "HUF", places=places)


def test_stripe_exceptions_convert_to_iso_minor_units() -> None:
    """Stripe's ISK is two-decimal (multiples of 100), MGA zero-decimal; others follow ISO."""
    assert money.from_processor_minor("stripe", 50000, "ISK") == 500
    with pytest.raises(CurrencyError, match="multiple of 100"):
        money.from_processor_minor("stripe", 50050, "ISK")
    assert money.from_processor_minor("stripe", 5000, "MGA") == 500000
    assert money.from_processor_minor("stripe", 1234, "USD") == 1234
    assert money.from_processor_minor("stripe", 1234, "JPY") == 1234
    with pytest.raises(CurrencyError, match="non-negative integer"):
        money.from_processor_minor("stripe", -1, "USD")


def test_base_conversion_rounds_half_to_even() -> None:
    """EUR → USD at 1.08 in Decimal; ties round to even (banker's rounding)."""
    rates = {"EUR": 1.08, "JPY": 0.0065, "KWD": 3.25}
    assert money.to_base(10000, "EUR", rates, "USD") == 10800
    assert money.to_base(100, "JPY", rates, "USD") == 65  # 0.65 USD exactly
    assert money.to_base(1, "JPY", {"JPY": 0.005}, "USD") == 0  # 0.5 cent → even 0
    assert money.to_base(3, "JPY", {"JPY": 0.005}, "USD") == 2  # 1.5 cents → even 2
    assert money.to_base(1000, "KWD", rates, "USD") == 325
    assert money.to_base(777, "USD", rates, "USD") == 777
    with pytest.raises(CurrencyError, match="no exchange rate for GBP"):
        money.to_base(1, "GBP", rates, "USD")


def test_unknown_currency_is_refused() -> None:
    """A made-up code is a clear error."""
    with pytest.raises(CurrencyError, match="unknown currency 'ABC'"):
        money.exponent("ABC")
