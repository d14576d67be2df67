"""gRPC TLS credentials from PEM files, with a clear ``ConfigError`` for a bad path.

gRPC itself reports a missing or malformed file late and vaguely (a failed handshake, or
an abort in C code), so every file is read and given a first look here.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from sysmonstm.errors import ConfigError


def _read_pem(path: Path | str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"TLS {what} {str(path)!r} cannot be read: {exc.strerror}") from exc
    if b"-----BEGIN " not in data:
        raise ConfigError(f"TLS {what} {str(path)!r} is not a PEM file")
    return data


def server_credentials(
    cert: Path | str, key: Path | str, client_ca: Path | str | None = None
) -> grpc.ServerCredentials:
    """Credentials for a server presenting ``cert``/``key``.

    With ``client_ca`` this is mutual TLS: every client must present a certificate signed
    by that CA, or its handshake fails.
    """
    pair = (_read_pem(key, "key"), _read_pem(cert, "certificate"))
    if client_ca is None:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials(
        [pair], root_certificates=_read_pem(client_ca, "client CA"), require_client_auth=True
    )


def channel_credentials(
    ca: Path | str | None = None, cert: Path | str | None = None, key: Path | str | None = None
) -> grpc.ChannelCredentials:
    """Credentials for a client channel.

    ``ca`` is the CA that signed the server (default: the system's trust store); ``cert``
    and ``key`` (both or neither) are the client's own certificate for mutual TLS.
    """
    if (cert is None) != (key is None):
        raise ConfigError("TLS client certificate and key must be given together")
    return grpc.ssl_channel_credentials(
        root_certificates=None if ca is None else _read_pem(ca, "CA"),
        private_key=None if key is None else _read_pem(key, "key"),
        certificate_chain=None if cert is None else _read_pem(cert, "certificate"),
    )
