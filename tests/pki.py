"""Throwaway certificates for TLS tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(name: str, ext: str, cwd: Path) -> None:
    """``name``.key and ``name``.pem, signed by ca.pem, with the extensions ``ext``."""
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=cwd,
    )
    (cwd / f"{name}.ext").write_text(ext + "\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.pem",
        "-extfile",
        f"{name}.ext",
        cwd=cwd,
    )


def make_pki(d: Path) -> Path:
    """A throwaway CA (ca.pem), a server certificate for 127.0.0.1 (server.pem/.key) and a
    client certificate (client.pem/.key) in ``d``, made with the openssl binary."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sysmonstm test CA",
        cwd=d,
    )
    _issue("server", "subjectAltName=IP:127.0.0.1,DNS:localhost", d)
    _issue("client", "extendedKeyUsage=clientAuth", d)
    return d
