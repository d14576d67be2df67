"""PayPal transmission signatures: our signer's format, certificate fetching only from allowed
hosts, chain and validity checks, the cache, and every mutation refused."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from sysmonstm.domains.payments import paypal_sig
from sysmonstm.domains.payments.paypal_sig import CertCache, PaypalVerifier, SignatureError
from tests.payments.paypal_pki import WEBHOOK_ID, PaypalPki, paypal_pki

BODY = b'{"id":"WH-1","event_type":"PAYMENT.CAPTURE.COMPLETED"}'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaypalPki]:
    with paypal_pki(tmp_path_factory.mktemp("paypal")) as made:
        yield made


def verifier(pki: PaypalPki, hosts: list[str] | None = None) -> PaypalVerifier:
    cache = CertCache(hosts if hosts is not None else [pki.host.host], pki.host.ca_file)
    return PaypalVerifier(WEBHOOK_ID, cache)


def test_signed_message_is_paypals_format(pki: PaypalPki) -> None:
    """The signature is RSA-SHA256 PKCS#1 v1.5 over id|time|webhook_id|unsigned crc32."""
    headers = pki.host.signer(pki.key).headers(BODY, WEBHOOK_ID, "tid-1", "2024-05-01T10:00:00Z")
    crc = zlib.crc32(BODY) & 0xFFFFFFFF
    expected = f"tid-1|2024-05-01T10:00:00Z|{WEBHOOK_ID}|{crc}".encode()
    assert paypal_sig.message("tid-1", "2024-05-01T10:00:00Z", WEBHOOK_ID, BODY) == expected
    signature = base64.b64decode(headers[paypal_sig.H_SIG])
    pki.cert.public_key().verify(signature, expected, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
    assert headers[paypal_sig.H_ALGO] == "SHA256withRSA"
    assert headers[paypal_sig.H_CERT] == pki.host.url("cert.pem")


async def test_verifies_and_caches_the_certificate(pki: PaypalPki) -> None:
    """A good delivery verifies; the certificate is fetched once for many deliveries."""
    v = verifier(pki)
    before = pki.host.downloads.get("cert.pem", 0)
    for i in range(3):
        headers = pki.host.signer(pki.key).headers(BODY, WEBHOOK_ID, f"tid-{i}")
        assert (await v.verify(BODY, headers)).transmission_id == f"tid-{i}"
    assert v.certs.fetches == 1
    assert pki.host.downloads["cert.pem"] == before + 1


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/cert.pem",
        "http://127.0.0.1:{port}/cert.pem",
        "https://127.0.0.1:1/cert.pem",
        "https://user:pw@127.0.0.1:{port}/cert.pem",
        "file:///etc/passwd",
        "not a url",
    ],
)
async def test_cert_url_outside_the_allow_list_is_refused_without_fetching(
    pki: PaypalPki, url: str
) -> None:
    """Another host, plain http, another port, user info: refused before any connection."""
    headers = pki.host.signer(pki.key).headers(BODY, WEBHOOK_ID)
    headers[paypal_sig.H_CERT] = url.format(port=pki.host.port)
    v = verifier(pki)
    with pytest.raises(SignatureError) as info:
        await v.verify(BODY, headers)
    assert info.value.error_code == "cert_url_not_allowed"
    assert v.certs.fetches == 0


def test_default_allow_list_is_paypals_hosts_on_443() -> None:
    """The shipped allow-list takes api.paypal.com on 443 only."""
    hosts = ["api.paypal.com", "api.sandbox.paypal.com"]
    paypal_sig.check_cert_url("https://api.paypal.com/v1/notifications/certs/CERT-1", hosts)
    for bad in ("https://api.paypal.com:8443/c", "https://api.paypal.com.evil.io/c"):
        with pytest.raises(SignatureError):
            paypal_sig.check_cert_url(bad, hosts)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("expired.pem", "does not validate"),
        ("wrong-name.pem", "does not name a PayPal signing host"),
        ("foreign.pem", "does not validate"),
        ("missing.pem", "HTTP 404"),
    ],
)
async def test_untrusted_certificates_are_refused(pki: PaypalPki, path: str, reason: str) -> None:
    """Expired, not naming PayPal's signer, from another CA, or absent: refused."""
    headers = pki.host.signer(pki.key, path).headers(BODY, WEBHOOK_ID)
    with pytest.raises(SignatureError, match=reason):
        await verifier(pki).verify(BODY, headers)


async def test_public_roots_do_not_trust_a_private_ca(pki: PaypalPki) -> None:
    """Without ``cert_ca`` the host's TLS itself is not trusted: the fetch fails."""
    headers = pki.host.signer(pki.key).headers(BODY, WEBHOOK_ID)
    v = PaypalVerifier(WEBHOOK_ID, CertCache([pki.host.host]))
    with pytest.raises(SignatureError) as info:
        await v.verify(BODY, headers)
    assert info.value.error_code == "cert_unavailable"


@pytest.mark.parametrize(
    "mutation",
    ["body", "crc-equal-length", "webhook", "transmission", "time", "signature", "algo",
     "missing", "not-base64"],
)  # fmt: skip
async def test_every_mutation_is_refused(pki: PaypalPki, mutation: str) -> None:
    """A changed body, webhook id, transmission id, time, signature or algorithm fails."""
    headers = pki.host.signer(pki.key).headers(BODY, WEBHOOK_ID)
    body, v = BODY, verifier(pki)
    if mutation == "body":
        body = BODY.replace(b"WH-1", b"WH-2")
    elif mutation == "crc-equal-length":
        body = BODY[:-1] + b" "
    elif mutation == "webhook":
        v = PaypalVerifier("OTHERWEBHOOKID", v.certs)
    elif mutation == "transmission":
        headers[paypal_sig.H_ID] += "x"
    elif mutation == "time":
        headers[paypal_sig.H_TIME] = "2020-01-01T00:00:00Z"
    elif mutation == "signature":
        raw = bytearray(base64.b64decode(headers[paypal_sig.H_SIG]))
        raw[0] ^= 1
        headers[paypal_sig.H_SIG] = base64.b64encode(bytes(raw)).decode()
    elif mutation == "algo":
        headers[paypal_sig.H_ALGO] = "SHA1withRSA"
    elif mutation == "missing":
        del headers[paypal_sig.H_SIG]
    elif mutation == "not-base64":
        headers[paypal_sig.H_SIG] = "***"
    with pytest.raises(SignatureError):
        await v.verify(body, headers)


def test_headers_are_read_in_any_case(tmp_path: Path) -> None:
    """HTTP header names are case-insensitive."""
    t = paypal_sig.Transmission.from_headers(
        {k.lower(): "v" for k in (paypal_sig.H_ID, paypal_sig.H_TIME, paypal_sig.H_SIG,
                                  paypal_sig.H_CERT, paypal_sig.H_ALGO)}
    )  # fmt: skip
    assert t.transmission_id == "v"
    assert t.auth_algo == "v"
