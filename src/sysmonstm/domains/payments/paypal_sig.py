"""PayPal's webhook transmission signature: verify it on the raw body, and make one (tests,
the simulator).

PayPal signs ``f"{transmission_id}|{transmission_time}|{webhook_id}|{crc32(body)}"`` (the
CRC-32 of the raw body as an unsigned decimal) with RSA-SHA256, PKCS#1 v1.5
(``PAYPAL-AUTH-ALGO: SHA256withRSA``), and sends the base64 signature with the URL of its
signing certificate (``PAYPAL-CERT-URL``). Because that URL comes with the request, it is the
attacker's choice unless checked: the certificate is fetched only over https from a host in
``payments.paypal.allowed_cert_hosts`` (an entry ``host`` means port 443, ``host:port`` that
port; no redirects followed), and only used when its chain leads to a trusted CA
(``payments.paypal.cert_ca``, else the public roots), it is valid now, and it names one of
PayPal's signing hosts (``SIGNER_NAMES``). Validated keys are cached by URL until the
certificate expires, so a burst of webhooks costs one fetch.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import secrets
import ssl
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import certifi
import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from sysmonstm.domains.payments.stripe_sig import SignatureError

ALGO = "SHA256withRSA"
SIGNER_NAMES = (
    "messageverificationcerts.paypal.com",
    "messageverificationcerts.sandbox.paypal.com",
)
H_ID, H_TIME, H_SIG = (
    "PAYPAL-TRANSMISSION-ID",
    "PAYPAL-TRANSMISSION-TIME",
    "PAYPAL-TRANSMISSION-SIG",
)
H_CERT, H_ALGO = "PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO"
MAX_CERT_BYTES = 64 * 1024
FETCH_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Transmission:
    """The signature headers of one PayPal webhook delivery."""

    transmission_id: str
    time: str
    signature: str
    cert_url: str
    auth_algo: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Transmission:
        """Read the headers (any case); ``SignatureError`` naming the first one missing."""
        lower = {k.lower(): v for k, v in headers.items()}
        values = []
        for name in (H_ID, H_TIME, H_SIG, H_CERT, H_ALGO):
            value = lower.get(name.lower(), "").strip()
            if not value or len(value) > 2048:
                raise SignatureError(f"missing or oversized {name} header", "missing_signature")
            values.append(value)
        return cls(*values)


def message(transmission_id: str, time: str, webhook_id: str, body: bytes) -> bytes:
    """What PayPal signs for ``body``."""
    return f"{transmission_id}|{time}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()


def check_cert_url(url: str, allowed_hosts: Sequence[str]) -> None:
    """``SignatureError`` unless ``url`` is https on an allowed host (and port)."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port or 443
    except ValueError:
        raise SignatureError(f"{H_CERT} is not a URL", "cert_url_not_allowed") from None
    allowed = False
    for entry in allowed_hosts:
        name, sep, entry_port = entry.lower().rpartition(":")
        if not sep or not entry_port.isdigit():
            name, entry_port = entry.lower(), "443"
        allowed |= host == name and port == int(entry_port)
    if parts.scheme != "https" or parts.username or parts.password or not allowed:
        raise SignatureError(
            f"{H_CERT} {url!r} is not https on an allowed certificate host",
            "cert_url_not_allowed",
        )


def _trust_roots(ca: Path | None) -> list[x509.Certificate]:
    path = ca if ca is not None else Path(certifi.where())
    return x509.load_pem_x509_certificates(path.read_bytes())


class CertCache:
    """PayPal signing keys by certificate URL: fetched from allowed hosts only, validated,
    kept until the certificate's expiry."""

    def __init__(self, allowed_hosts: Sequence[str], ca: Path | None = None) -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self.ca = ca
        self.fetches = 0  # how many certificates were downloaded (tests and logs)
        self._keys: dict[str, tuple[rsa.RSAPublicKey, dt.datetime]] = {}
        self._lock = asyncio.Lock()
        self._roots: list[x509.Certificate] | None = None

    async def key(self, url: str) -> rsa.RSAPublicKey:
        """The validated public key of the certificate at ``url``; ``SignatureError`` when
        the URL is not allowed, the fetch fails or the certificate does not validate."""
        check_cert_url(url, self.allowed_hosts)
        async with self._lock:
            now = dt.datetime.now(dt.UTC)
            cached = self._keys.get(url)
            if cached is not None and cached[1] > now:
                return cached[0]
            pem = await self._fetch(url)
            self.fetches += 1
            key, expires = self._validate(pem, now)
            self._keys[url] = (key, expires)
            return key

    async def _fetch(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca) if self.ca else certifi.where())
        try:
            async with (
                httpx.AsyncClient(verify=context, timeout=FETCH_TIMEOUT_S) as client,
                client.stream("GET", url, follow_redirects=False) as response,
            ):
                if response.status_code != 200:
                    raise SignatureError(
                        f"fetching the PayPal certificate gave HTTP {response.status_code}",
                        "cert_unavailable",
                    )
                data = b""
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_CERT_BYTES:
                        raise SignatureError("PayPal certificate too large", "cert_invalid")
                return data
        except httpx.HTTPError as exc:
            raise SignatureError(
                f"cannot fetch the PayPal certificate: {type(exc).__name__}", "cert_unavailable"
            ) from exc

    def _validate(self, pem: bytes, now: dt.datetime) -> tuple[rsa.RSAPublicKey, dt.datetime]:
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError as exc:
            raise SignatureError("PayPal certificate is not PEM", "cert_invalid") from exc
        leaf, intermediates = chain[0], chain[1:]
        names = _dns_names(leaf)
        signer = next((n for n in SIGNER_NAMES if n in names), None)
        if signer is None:
            raise SignatureError("certificate does not name a PayPal signing host", "cert_invalid")
        if self._roots is None:
            self._roots = _trust_roots(self.ca)
        verifier = (
            PolicyBuilder()
            .store(Store(self._roots))
            .time(now)
            .build_server_verifier(x509.DNSName(signer))
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise SignatureError(
                f"PayPal certificate does not validate: {exc}", "cert_invalid"
            ) from exc
        key = leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("PayPal certificate key is not RSA", "cert_invalid")
        return key, leaf.not_valid_after_utc


def _dns_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {n.lower() for n in san.get_values_for_type(x509.DNSName)}


class PaypalVerifier:
    """Verifies PayPal webhooks for one ``webhook_id``."""

    def __init__(self, webhook_id: str, certs: CertCache) -> None:
        self.webhook_id = webhook_id
        self.certs = certs

    async def verify(self, body: bytes, headers: Mapping[str, str]) -> Transmission:
        """The transmission when its signature holds over ``body``; else ``SignatureError``.

        The cheap checks (headers, algorithm, the certificate URL's host) come before any
        fetch, so a forged URL never makes us connect anywhere."""
        if not self.webhook_id:
            raise SignatureError("no PayPal webhook id is configured", "not_configured")
        t = Transmission.from_headers(headers)
        if t.auth_algo != ALGO:
            raise SignatureError(f"{H_ALGO} {t.auth_algo!r} is not {ALGO}", "invalid_signature")
        try:
            signature = base64.b64decode(t.signature, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError(f"{H_SIG} is not base64", "malformed_signature") from None
        key = await self.certs.key(t.cert_url)
        try:
            key.verify(
                signature,
                message(t.transmission_id, t.time, self.webhook_id, body),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise SignatureError("PayPal transmission signature does not verify") from None
        return t


class PaypalSigner:
    """Signs bodies as PayPal does, with ``key`` whose certificate is served at ``cert_url``."""

    def __init__(self, key: rsa.RSAPrivateKey, cert_url: str) -> None:
        self.key = key
        self.cert_url = cert_url

    def headers(
        self,
        body: bytes,
        webhook_id: str,
        transmission_id: str | None = None,
        time: str | None = None,
    ) -> dict[str, str]:
        """The five PayPal signature headers for ``body``."""
        tid = transmission_id or secrets.token_hex(16)
        when = time or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sig = self.key.sign(
            message(tid, when, webhook_id, body), padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            H_ID: tid,
            H_TIME: when,
            H_SIG: base64.b64encode(sig).decode(),
            H_CERT: self.cert_url,
            H_ALGO: ALGO,
        }
