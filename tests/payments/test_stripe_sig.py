"""Stripe-Signature: our signatures are Stripe's format (Stripe's own library verifies them),
and every mutation is refused."""

from __future__ import annotations

import time

import pytest
import stripe

from sysmonstm.domains.payments import stripe_sig
from sysmonstm.domains.payments.stripe_sig import SignatureError

SECRET, OLD = "whsec_test_new_0123456789", "whsec_test_old_9876543210"
BODY = b'{"id":"evt_1","object":"event","type":"charge.succeeded"}'


def test_stripe_library_verifies_our_signatures() -> None:
    """Stripe's Python package accepts what ``sign`` makes, for each secret of a rotation."""
    header = stripe_sig.sign(BODY, [OLD, SECRET])
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, SECRET, 300)
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, OLD, 300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY.decode() + " ", header, SECRET, 300)


def test_we_verify_what_stripe_library_signs() -> None:
    """A header built with Stripe's own signing primitive verifies here."""
    t = int(time.time())
    v1 = stripe.WebhookSignature._compute_signature(f"{t}.{BODY.decode()}", SECRET)
    assert stripe_sig.verify(BODY, f"t={t},v1={v1}", [SECRET]) == t


def test_rotation_either_secret_and_any_v1_verifies() -> None:
    """Two configured secrets: a body signed with either verifies; extra v1 and v0 values
    are tolerated."""
    now = time.time()
    for used in (OLD, SECRET):
        assert stripe_sig.verify(BODY, stripe_sig.sign(BODY, used), [OLD, SECRET], now=now)
    junk = stripe_sig.sign(BODY, "whsec_other")
    good = stripe_sig.sign(BODY, SECRET)
    mixed = junk + "," + good.partition(",")[2] + ",v0=abc"
    assert stripe_sig.verify(BODY, mixed, [SECRET], now=now)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b, h: (b + b" ", h), "invalid_signature"),
        (lambda b, h: (b.replace(b"evt_1", b"evt_2"), h), "invalid_signature"),
        (lambda b, h: (b, h.replace("v1=", "v1=0")), "invalid_signature"),
        (lambda b, h: (b, h[:-1] + ("0" if h[-1] != "0" else "1")), "invalid_signature"),
        (lambda b, h: (b, h.replace("v1=", "v0=")), "malformed_signature"),
        (lambda b, h: (b, h.split(",")[1]), "malformed_signature"),
        (lambda b, h: (b, "garbage"), "malformed_signature"),
        (lambda b, h: (b, ""), "missing_signature"),
        (lambda b, h: (b, h.replace("t=", "t=1")), "timestamp_out_of_tolerance"),
        (lambda b, h: (b, "t=x," + h.split(",")[1]), "malformed_signature"),
        (lambda b, h: (b, h + ",v1=é"), None),  # a non-ASCII extra value: still verifies
    ],
)  # fmt: skip
def test_every_mutation_is_refused(mutate: object, code: str | None) -> None:
    """Body, signature, scheme, timestamp or a missing part: a SignatureError with its code."""
    now = time.time()
    header = stripe_sig.sign(BODY, SECRET, int(now))
    body, changed = mutate(BODY, header)  # type: ignore[operator]
    if code is None:
        assert stripe_sig.verify(body, changed, [SECRET], now=now)
        return
    with pytest.raises(SignatureError) as info:
        stripe_sig.verify(body, changed, [SECRET], now=now)
    assert info.value.error_code == code


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_timestamp_outside_tolerance_either_way_is_refused(offset: int) -> None:
    """A correctly signed body from too long ago, or from the future, is refused."""
    now = time.time()
    header = stripe_sig.sign(BODY, SECRET, int(now) + offset)
    with pytest.raises(SignatureError, match="outside the 300 s tolerance"):
        stripe_sig.verify(BODY, header, [SECRET], 300, now=now)


@pytest.mark.parametrize("offset", [-299, 0, 299])
def test_timestamp_within_tolerance_verifies(offset: int) -> None:
    """Within 300 s either way it verifies."""
    now = time.time()
    header = stripe_sig.sign(BODY, SECRET, int(now) + offset)
    assert stripe_sig.verify(BODY, header, [SECRET], 300, now=now) == int(now) + offset


def test_wrong_secret_and_no_secret() -> None:
    """Another secret does not verify; no secret configured is its own error."""
    header = stripe_sig.sign(BODY, SECRET)
    with pytest.raises(SignatureError, match="no Stripe-Signature v1 signature matches"):
        stripe_sig.verify(BODY, header, ["whsec_wrong"])
    with pytest.raises(SignatureError) as info:
        stripe_sig.verify(BODY, header, [])
    assert info.value.error_code == "not_configured"
    assert SECRET not in str(info.value)
