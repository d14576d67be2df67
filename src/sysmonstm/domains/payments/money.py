"""Money on the way in: ISO 4217 exponents, processors' exceptions, exact parsing, base amounts.

Every amount becomes integer minor units of its currency's ISO 4217 exponent (JPY 0, EUR 2,
KWD 3, CLF 4), parsed with ``Decimal`` from the processor's text or integer, never through a
float. An amount that does not fit the exponent exactly (``"10.001"`` EUR) is refused, not
rounded: money is never silently changed on the way in.

Processors that disagree with ISO (their own exponent for the integers they send, or the
decimals they accept) are listed in ``PROCESSOR_EXPONENTS``:

- Stripe sends integers in its own minor unit: ISK as two-decimal (ISO 0; Stripe amounts are
  multiples of 100) and MGA as zero-decimal (ISO 2). HUF and TWD charges are two-decimal as in
  ISO (Stripe's zero-decimal treatment of them concerns payouts only); UGX is zero-decimal in
  both.
- PayPal sends decimal strings and accepts no decimals for HUF, JPY and TWD.

Base amounts (``to_base``) use the rate table of ``payments.rates`` (units of the base
currency per major unit) and round half to even (banker's rounding) to the base currency's
minor unit: ties split evenly over many conversions instead of drifting upward.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from sysmonstm.errors import InvalidInputError

_DECIMAL = re.compile(r"^[0-9]{1,18}(?:\.[0-9]{1,18})?$")

# alpha numeric exponent, for every active ISO 4217 currency (funds codes included)
_ISO_TABLE = """
AED 784 2 AFN 971 2 ALL 008 2 AMD 051 2 AOA 973 2 ARS 032 2 AUD 036 2 AWG 533 2 AZN 944 2
BAM 977 2 BBD 052 2 BDT 050 2 BGN 975 2 BHD 048 3 BIF 108 0 BMD 060 2 BND 096 2 BOB 068 2
BOV 984 2 BRL 986 2 BSD 044 2 BTN 064 2 BWP 072 2 BYN 933 2 BZD 084 2 CAD 124 2 CDF 976 2
CHE 947 2 CHF 756 2 CHW 948 2 CLF 990 4 CLP 152 0 CNY 156 2 COP 170 2 COU 970 2 CRC 188 2
CUP 192 2 CVE 132 2 CZK 203 2 DJF 262 0 DKK 208 2 DOP 214 2 DZD 012 2 EGP 818 2 ERN 232 2
ETB 230 2 EUR 978 2 FJD 242 2 FKP 238 2 GBP 826 2 GEL 981 2 GHS 936 2 GIP 292 2 GMD 270 2
GNF 324 0 GTQ 320 2 GYD 328 2 HKD 344 2 HNL 340 2 HTG 332 2 HUF 348 2 IDR 360 2 ILS 376 2
INR 356 2 IQD 368 3 IRR 364 2 ISK 352 0 JMD 388 2 JOD 400 3 JPY 392 0 KES 404 2 KGS 417 2
KHR 116 2 KMF 174 0 KPW 408 2 KRW 410 0 KWD 414 3 KYD 136 2 KZT 398 2 LAK 418 2 LBP 422 2
LKR 144 2 LRD 430 2 LSL 426 2 LYD 434 3 MAD 504 2 MDL 498 2 MGA 969 2 MKD 807 2 MMK 104 2
MNT 496 2 MOP 446 2 MRU 929 2 MUR 480 2 MVR 462 2 MWK 454 2 MXN 484 2 MXV 979 2 MYR 458 2
MZN 943 2 NAD 516 2 NGN 566 2 NIO 558 2 NOK 578 2 NPR 524 2 NZD 554 2 OMR 512 3 PAB 590 2
PEN 604 2 PGK 598 2 PHP 608 2 PKR 586 2 PLN 985 2 PYG 600 0 QAR 634 2 RON 946 2 RSD 941 2
RUB 643 2 RWF 646 0 SAR 682 2 SBD 090 2 SCR 690 2 SDG 938 2 SEK 752 2 SGD 702 2 SHP 654 2
SLE 925 2 SOS 706 2 SRD 968 2 SSP 728 2 STN 930 2 SVC 222 2 SYP 760 2 SZL 748 2 THB 764 2
TJS 972 2 TMT 934 2 TND 788 3 TOP 776 2 TRY 949 2 TTD 780 2 TWD 901 2 TZS 834 2 UAH 980 2
UGX 800 0 USD 840 2 USN 997 2 UYI 940 0 UYU 858 2 UYW 927 4 UZS 860 2 VED 926 2 VES 928 2
VND 704 0 VUV 548 0 WST 882 2 XAF 950 0 XCD 951 2 XCG 532 2 XOF 952 0 XPF 953 0 YER 886 2
ZAR 710 2 ZMW 967 2 ZWG 924 2
"""


def _load() -> tuple[dict[str, int], dict[str, str]]:
    words = _ISO_TABLE.split()
    exponents: dict[str, int] = {}
    numeric: dict[str, str] = {}
    for i in range(0, len(words), 3):
        alpha, num, exp = words[i : i + 3]
        exponents[alpha] = int(exp)
        numeric[num] = alpha
    return exponents, numeric


EXPONENTS, NUMERIC = _load()
"""ISO 4217: minor-unit exponent by alpha code; alpha code by three-digit numeric code."""

PROCESSOR_EXPONENTS: Mapping[str, Mapping[str, int]] = {
    "stripe": {"ISK": 2, "MGA": 0},  # the unit of Stripe's integer amounts
    "paypal": {"HUF": 0, "JPY": 0, "TWD": 0},  # the decimals PayPal's strings may carry
}


class CurrencyError(InvalidInputError):
    """An unknown currency code or an amount that does not fit its currency exactly."""


def currency(code: str) -> str:
    """The upper-case ISO 4217 alpha code of ``code`` (any case); ``CurrencyError`` if unknown."""
    alpha = code.strip().upper()
    if alpha not in EXPONENTS:
        raise CurrencyError(f"unknown currency {code!r} (ISO 4217 alpha code expected)")
    return alpha


def exponent(code: str) -> int:
    """The ISO 4217 exponent (digits after the decimal point) of ``code``."""
    return EXPONENTS[currency(code)]


def processor_exponent(processor: str, code: str) -> int:
    """The exponent ``processor`` uses for ``code`` (ISO's unless it is a known exception)."""
    alpha = currency(code)
    return PROCESSOR_EXPONENTS.get(processor, {}).get(alpha, EXPONENTS[alpha])


def from_numeric(code: str) -> str:
    """The alpha code of an ISO 4217 numeric code (``"978"`` → ``"EUR"``, ``"36"`` → AUD)."""
    text = code.strip()
    if not text.isdigit() or len(text) > 3:
        raise CurrencyError(f"{code!r} is not an ISO 4217 numeric currency code")
    alpha = NUMERIC.get(text.zfill(3))
    if alpha is None:
        raise CurrencyError(f"unknown ISO 4217 numeric currency code {code!r}")
    return alpha


def parse_decimal(text: str, code: str, *, places: int | None = None) -> int:
    """Minor units of ``code`` from a decimal string such as ``"12.34"`` or ``"1000"``.

    At most ``places`` decimals are accepted (default: the ISO exponent; a processor's own,
    such as PayPal's 0 for JPY, may be stricter). Signs, exponents, NaN, infinities and
    anything past the exponent are refused with ``CurrencyError``."""
    exp = exponent(code)
    allowed = exp if places is None else min(places, exp)
    raw = text.strip()
    if not _DECIMAL.match(raw):
        raise CurrencyError(f"amount {text!r} is not a non-negative decimal number")
    value = Decimal(raw)
    if value != value.quantize(Decimal(1).scaleb(-allowed)):
        raise CurrencyError(f"amount {text!r} has more than {allowed} decimals for {code}")
    return int(value.scaleb(exp))


def from_processor_minor(processor: str, amount: int, code: str) -> int:
    """ISO minor units from an integer in ``processor``'s own unit (Stripe's ``amount``)."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise CurrencyError(f"amount {amount!r} is not a non-negative integer")
    shift = exponent(code) - processor_exponent(processor, code)
    scale = int(10 ** abs(shift))
    if shift >= 0:
        return amount * scale
    quotient, remainder = divmod(amount, scale)
    if remainder:
        raise CurrencyError(
            f"{processor} amount {amount} {code} is not a whole ISO minor unit "
            f"(it must be a multiple of {scale})"
        )
    return quotient


def to_base(amount_minor: int, code: str, rates: Mapping[str, float], base: str) -> int:
    """``amount_minor`` of ``code`` in minor units of ``base``, rounded half to even.

    ``rates[code]`` is base units per major unit of ``code`` (the base itself is 1). Rates
    from settings are floats; each is read through its shortest decimal text (``1.08`` is
    exactly 1.08) so the conversion itself stays in ``Decimal``. A currency without a rate
    raises ``CurrencyError``."""
    alpha, base_alpha = currency(code), currency(base)
    if alpha == base_alpha:
        rate = Decimal(1)
    elif alpha in rates:
        rate = Decimal(repr(float(rates[alpha])))
    else:
        raise CurrencyError(f"no exchange rate for {alpha} in payments.rates")
    major = Decimal(amount_minor).scaleb(-EXPONENTS[alpha])
    return int((major * rate).scaleb(EXPONENTS[base_alpha]).quantize(Decimal(1), ROUND_HALF_EVEN))
