"""A private CA and the certificates mutual TLS needs, made with ``cryptography``.

Keys are ECDSA on P-256 with SHA-256 signatures: every TLS stack sysmonstm meets accepts
them (gRPC's BoringSSL, OpenSSL, NATS, PostgreSQL, browsers). Ed25519 certificates are not
an option: grpcio (1.85) fails their handshake with NO_COMMON_SIGNATURE_ALGORITHMS.

Server certificates carry the serverAuth key usage and subject alternative names (DNS names
and IP addresses: what gRPC checks the dialled address against); client certificates carry
clientAuth. Private keys are written unencrypted (PKCS#8 PEM) with mode 0600; nothing here
ever prints or logs one. An existing file is never replaced unless the caller says
``force``, and then it is replaced atomically.

Files in a directory: ``ca.pem`` and ``ca.key``; ``server-NAME.pem``/``.key``;
``client-NAME.pem``/``.key``.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sysmonstm.errors import ConfigError

CA_DAYS = 3650
LEAF_DAYS = 825
CLOCK_SKEW = dt.timedelta(minutes=5)  # backdate, so a peer whose clock lags accepts it
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*\.?$")


class Kind(enum.Enum):
    """What a leaf certificate is for: it decides the extended key usage and file names."""

    SERVER = "server"
    CLIENT = "client"


class OverwriteRefusedError(ConfigError):
    """Some of the files to write exist already; nothing was written."""

    def __init__(self, paths: Sequence[Path]) -> None:
        names = ", ".join(str(p) for p in paths)
        super().__init__(f"{names} already exist(s); pass --force to replace")
        self.paths = tuple(paths)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True, slots=True)
class PemFile:
    """One file to write; ``secret`` files get mode 0600, the others 0644."""

    path: Path
    data: bytes
    secret: bool


def check_name(name: str) -> str:
    """``name`` if it can name a certificate and its files (letters, digits, ``.``, ``-``)."""
    if not _NAME.match(name) or ".." in name:
        raise ConfigError(f"certificate name {name!r}: use letters, digits, '.' and '-'")
    return name


def parse_san(value: str) -> x509.GeneralName:
    """A subject alternative name: an IP address (v4 or v6) or a DNS name (``*.`` allowed)."""
    text = value.strip()
    try:
        return x509.IPAddress(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    if not _DNS.match(text) or len(text) > 253:
        raise ConfigError(f"subject alternative name {value!r} is neither an IP nor a DNS name")
    return x509.DNSName(text.rstrip(".").lower())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _subject(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sysmonstm"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def new_ca(common_name: str = "sysmonstm CA", days: int = CA_DAYS) -> Issued:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    if days < 1:
        raise ConfigError("a CA must be valid for at least one day")
    key = ec.generate_private_key(ec.SECP256R1())
    name = _subject(common_name)
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _unique(names: Iterable[x509.GeneralName]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        if n not in out:
            out.append(n)
    return out


def issue(
    ca: Issued, name: str, kind: Kind, sans: Sequence[str] = (), days: int = LEAF_DAYS
) -> Issued:
    """A leaf certificate for ``name`` signed by ``ca``.

    A server certificate names ``name`` itself (as a DNS name or an IP) and every ``sans``
    entry, since clients check the address they dial against these. A client certificate
    is identified by its common name; a DNS-shaped ``name`` is added as a SAN too. The
    validity ends no later than the CA's.
    """
    check_name(name)
    if days < 1:
        raise ConfigError("a certificate must be valid for at least one day")
    alt = [parse_san(s) for s in sans]
    if kind is Kind.SERVER:
        alt = [parse_san(name), *alt]
    elif _DNS.match(name):
        alt = [x509.DNSName(name.lower()), *alt]
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usage = (
        ExtendedKeyUsageOID.SERVER_AUTH if kind is Kind.SERVER else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(_unique(alt)), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def ca_files(directory: Path) -> tuple[Path, Path]:
    """Where the CA's certificate and key live in ``directory``."""
    return directory / "ca.pem", directory / "ca.key"


def leaf_files(directory: Path, kind: Kind, name: str) -> tuple[Path, Path]:
    """Where ``name``'s certificate and key live in ``directory``."""
    stem = f"{kind.value}-{check_name(name)}"
    return directory / f"{stem}.pem", directory / f"{stem}.key"


def bundle(issued: Issued, cert_path: Path, key_path: Path) -> list[PemFile]:
    return [
        PemFile(cert_path, issued.cert_pem(), secret=False),
        PemFile(key_path, issued.key_pem(), secret=True),
    ]


def load_ca(directory: Path) -> Issued:
    """The CA kept in ``directory`` (``ca.pem`` and ``ca.key``), checked to belong together."""
    cert_path, key_path = ca_files(directory)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(
            f"no CA in {directory}: {exc.filename} cannot be read ({exc.strerror}); "
            "make one with `sysmonstm certs ca`"
        ) from exc
    except (ValueError, TypeError) as exc:
        # the message names the file, never its content
        raise ConfigError(f"the CA in {directory} is not an unencrypted PEM pair") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{key_path} is not an EC key")
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
        raise ConfigError(f"{key_path} is not the key of {cert_path}")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound as exc:
        raise ConfigError(f"{cert_path} lacks CA extensions; not a CA made here") from exc
    if not constraints.ca:
        raise ConfigError(f"{cert_path} is not a CA certificate")
    return Issued(cert, key)


def write_files(files: Sequence[PemFile], *, force: bool = False) -> None:
    """Write every file, or none if one exists and ``force`` is false.

    Keys get mode 0600 whatever the umask; with ``force`` each file is replaced atomically
    (written beside, then renamed), so a reader never sees half a key.
    """
    existing = [f.path for f in files if f.path.exists() or f.path.is_symlink()]
    if existing and not force:
        raise OverwriteRefusedError(existing)
    for f in files:
        try:
            f.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write(f.path, f.data, 0o600 if f.secret else 0o644, replace=force)
        except OverwriteRefusedError:
            raise
        except OSError as exc:
            raise ConfigError(f"cannot write {f.path}: {exc.strerror}") from exc


def _write(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    target = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp") if replace else path
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError as exc:
        raise OverwriteRefusedError([path]) from exc
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(target, path)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint, colon-separated hex, as ``openssl x509 -fingerprint`` shows it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def alt_names(cert: x509.Certificate) -> list[str]:
    """The subject alternative names as text (``DNS:m1``, ``IP:10.0.0.5``)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)] + [
        f"IP:{n}" for n in ext.get_values_for_type(x509.IPAddress)
    ]
