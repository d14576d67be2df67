"""``nats://`` bus URLs: servers, credentials and JetStream settings.

``nats://[user:password@|token@]host[:4222][,host2[:4222]...][?param=value&...]``

| parameter | default | meaning |
|---|---|---|
| ``stream_prefix`` | ``SYSMONSTM`` | stream names ``{prefix}_{DOMAIN}`` and the subject root |
| ``replicas`` | ``1`` | stream replicas (1..5; 3 on a cluster) |
| ``max_age`` | ``7d`` | how long a stream keeps messages |
| ``max_bytes`` | ``-1`` | size limit per stream (oldest dropped first; -1: none) |
| ``storage`` | ``file`` | ``file`` or ``memory`` |
| ``dup_window`` | ``2m`` | a repeated event id within this window is stored once |
| ``ack_wait`` | ``30s`` | an unacknowledged message is redelivered after this |
| ``timeout`` | ``5s`` | one JetStream API request or publish attempt |
| ``publish_timeout`` | ``30s`` | a publish's deadline, retries across reconnects included |
| ``max_inflight`` | ``1024`` | publishes awaiting their acknowledgement at once |
| ``tls`` | ``false`` | connect with TLS (``tls_ca`` names a CA file) |
| ``creds`` | (none) | a NATS credentials file (JWT + NKey) |
| ``name`` | ``sysmonstm`` | the connection name shown by the server's monitoring |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sysmonstm.errors import ConfigError
from sysmonstm.events.url_params import UrlParams

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$")


@dataclass(frozen=True, slots=True)
class NatsConfig:
    """Everything a ``nats://`` URL says, validated."""

    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    token: str | None = None
    stream_prefix: str = "SYSMONSTM"
    replicas: int = 1
    max_age_s: float = 7 * 86400.0
    max_bytes: int = -1
    storage: str = "file"
    dup_window_s: float = 120.0
    ack_wait_s: float = 30.0
    timeout_s: float = 5.0
    publish_timeout_s: float = 30.0
    max_inflight: int = 1024
    tls: bool = False
    tls_ca: str | None = None
    creds: str | None = None
    name: str = "sysmonstm"


def parse_nats_url(url: str) -> NatsConfig:
    """Read a ``nats://`` URL; a bad part raises ``ConfigError`` naming it."""
    parts = urlsplit(url)
    if parts.scheme != "nats":
        raise ConfigError(f"not a nats:// URL: {parts.scheme}://…")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user = password = token = None
    if userinfo:
        name, colon, secret = userinfo.partition(":")
        if colon:
            user, password = unquote(name), unquote(secret)
        else:
            token = unquote(name)
    q = UrlParams(parts.query)
    prefix = q.text("stream_prefix", "SYSMONSTM") or "SYSMONSTM"
    if not _NAME.match(prefix):
        raise ConfigError(
            f"bus URL: stream_prefix={prefix!r} must be 1..64 letters, digits, '_' or '-'"
        )
    storage = q.text("storage", "file") or "file"
    if storage not in ("file", "memory"):
        raise ConfigError(f"bus URL: storage={storage!r} must be file or memory")
    max_age = q.duration("max_age", 7 * 86400.0, low=1.0)
    dup_window = q.duration("dup_window", 120.0)
    if dup_window > max_age:
        raise ConfigError(f"bus URL: dup_window ({dup_window:g} s) exceeds max_age ({max_age:g} s)")
    tls = q.flag("tls", False)
    config = NatsConfig(
        servers=_servers(hostlist, tls=tls),
        user=user,
        password=password,
        token=token,
        stream_prefix=prefix,
        replicas=q.integer("replicas", 1, 1, 5),
        max_age_s=max_age,
        max_bytes=q.integer("max_bytes", -1, -1, 2**62),
        storage=storage,
        dup_window_s=dup_window,
        ack_wait_s=q.duration("ack_wait", 30.0, low=0.1),
        timeout_s=q.duration("timeout", 5.0, low=0.05),
        publish_timeout_s=q.duration("publish_timeout", 30.0, low=0.05),
        max_inflight=q.integer("max_inflight", 1024, 1, 1_000_000),
        tls=tls,
        tls_ca=q.text("tls_ca", None),
        creds=q.text("creds", None),
        name=q.text("name", "sysmonstm") or "sysmonstm",
    )
    q.finish()
    return config


def _servers(hostlist: str, *, tls: bool) -> tuple[str, ...]:
    scheme = "tls" if tls else "nats"
    out: list[str] = []
    for raw in hostlist.split(","):
        host = raw.strip() or "127.0.0.1"
        m = _HOST.match(host)
        if m is None:
            raise ConfigError(f"bus URL: cannot read server {host!r} (use host[:port])")
        port = int(m.group(2) or 4222)
        if not 0 < port < 65536:
            raise ConfigError(f"bus URL: server {host!r} has no valid port")
        out.append(f"{scheme}://{m.group(1)}:{port}")
    return tuple(out)
