"""A stand-in for PayPal's certificate host: a dev CA, an RSA signing certificate naming
PayPal's signing host, served over HTTPS from 127.0.0.1 (counting downloads)."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sysmonstm import certs
from sysmonstm.domains.payments.paypal_sig import SIGNER_NAMES, PaypalSigner

WEBHOOK_ID = "8PT597110X687430LKGECATA"


def signing_cert(
    ca: certs.Issued, name: str = SIGNER_NAMES[0], days: int = 30, expired: bool = False
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """An RSA-2048 certificate for ``name`` signed by ``ca`` (serverAuth, as PayPal's is)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=10), now - dt.timedelta(days=1)) if expired else (
        now - dt.timedelta(minutes=5), now + dt.timedelta(days=days))  # fmt: skip
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return key, cert


@dataclass
class CertHost:
    """The HTTPS server: ``url(path)`` of a served file, ``downloads`` per path."""

    port: int
    ca_file: Path
    files: dict[str, bytes]
    downloads: dict[str, int] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}/{path}"

    def signer(self, key: rsa.RSAPrivateKey, path: str = "cert.pem") -> PaypalSigner:
        return PaypalSigner(key, self.url(path))


@dataclass
class PaypalPki:
    ca: certs.Issued
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    host: CertHost


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@contextmanager
def paypal_pki(tmp: Path) -> Iterator[PaypalPki]:
    """A CA, PayPal-like signing certificates and the HTTPS host serving them:
    ``cert.pem`` (valid), ``expired.pem``, ``wrong-name.pem``, ``foreign.pem`` (another CA)."""
    ca = certs.new_ca("test PayPal CA")
    key, cert = signing_cert(ca)
    _, expired = signing_cert(ca, expired=True)
    _, wrong = signing_cert(ca, name="example.com")
    _, foreign = signing_cert(certs.new_ca("someone else"))
    server = certs.issue(ca, "127.0.0.1", certs.Kind.SERVER)
    tmp.mkdir(parents=True, exist_ok=True)
    ca_file = tmp / "ca.pem"
    ca_file.write_bytes(ca.cert_pem())
    (tmp / "server.pem").write_bytes(server.cert_pem())
    (tmp / "server.key").write_bytes(server.key_pem())
    files = {
        "cert.pem": _pem(cert),
        "expired.pem": _pem(expired),
        "wrong-name.pem": _pem(wrong),
        "foreign.pem": _pem(foreign),
    }
    host = CertHost(0, ca_file, files)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.lstrip("/")
            host.downloads[path] = host.downloads.get(path, 0) + 1
            data = files.get(path)
            self.send_response(200 if data else 404)
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    host.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield PaypalPki(ca, key, cert, host)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
