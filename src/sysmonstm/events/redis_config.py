"""``redis://`` and ``rediss://`` bus URLs.

``redis[s]://[[user]:password@]host[:6379][/db][?param=value&...]``

| parameter | default | meaning |
|---|---|---|
| ``prefix`` | ``sysmonstm:`` | key prefix: streams ``{prefix}bus:{domain}``, others ``bus-*`` |
| ``maxlen`` | ``1000000`` | entries kept per domain stream (approximate trimming, ``MAXLEN ~``) |
| ``dup_window`` | ``2m`` | a repeated event id within this window is stored once |
| ``ack_wait`` | ``30s`` | a group member's unacknowledged entry is claimed by another after this |
| ``publish_timeout`` | ``30s`` | a publish's deadline, retries across reconnects included |
| ``max_inflight`` | ``1024`` | publishes queued for the pipelined writer at once |

Every other parameter is one of redis-py's own (``socket_timeout``, ``health_check_interval``,
``ssl_ca_certs``, ``ssl_cert_reqs``, …) and is passed to it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS

from sysmonstm.errors import ConfigError
from sysmonstm.events.url_params import UrlParams

_REPLY_SHAPE = ("protocol", "legacy_responses")
_OURS = ("prefix", "maxlen", "dup_window", "ack_wait", "publish_timeout", "max_inflight")


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """Everything a ``redis://`` URL says, validated; ``client_url`` is what redis-py gets."""

    client_url: str
    prefix: str = "sysmonstm:"
    maxlen: int = 1_000_000
    dup_window_s: float = 120.0
    ack_wait_s: float = 30.0
    publish_timeout_s: float = 30.0
    max_inflight: int = 1024


def parse_redis_url(url: str) -> RedisConfig:
    """Read a ``redis://`` URL; a bad parameter raises ``ConfigError`` naming it."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(f"not a redis:// URL: {parts.scheme}://…")
    q = UrlParams(parts.query)
    theirs: list[tuple[str, str]] = []
    for key in q.names():
        if key in _OURS:
            continue
        if key in _REPLY_SHAPE:
            raise ConfigError(f"bus URL: parameter {key!r} is not supported (it changes replies)")
        if key not in URL_QUERY_ARGUMENT_PARSERS and not key.startswith("ssl_"):
            raise ConfigError(f"bus URL: unknown parameter {key!r}")
        theirs.append((key, q.raw(key) or ""))
    prefix = q.raw("prefix")
    prefix = "sysmonstm:" if prefix is None else prefix
    if any(c.isspace() for c in prefix) or len(prefix) > 200:
        raise ConfigError(f"bus URL: prefix={prefix!r} must be at most 200 characters, no spaces")
    config = RedisConfig(
        client_url=urlunsplit(parts._replace(query=urlencode(theirs))),
        prefix=prefix,
        maxlen=q.integer("maxlen", 1_000_000, 1, 2**62),
        dup_window_s=q.duration("dup_window", 120.0),
        ack_wait_s=q.duration("ack_wait", 30.0),
        publish_timeout_s=q.duration("publish_timeout", 30.0),
        max_inflight=q.integer("max_inflight", 1024, 1, 1_000_000),
    )
    q.finish()
    return config
