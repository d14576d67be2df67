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
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from redis.asyncio.connection import URL_QUERY_ARGUMENT_PARSERS

from sysmonstm.config import parse_duration
from sysmonstm.errors import ConfigError

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
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigError(f"bus URL: unreadable query string {parts.query!r}") from exc
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, values in query.items():
        if len(values) != 1:
            raise ConfigError(f"bus URL: parameter {key!r} is given {len(values)} times")
        if key in _OURS:
            ours[key] = values[0]
        elif key in _REPLY_SHAPE:
            raise ConfigError(f"bus URL: parameter {key!r} is not supported (it changes replies)")
        elif key in URL_QUERY_ARGUMENT_PARSERS or key.startswith("ssl_"):
            theirs.append((key, values[0]))
        else:
            raise ConfigError(f"bus URL: unknown parameter {key!r}")
    prefix = ours.get("prefix", "sysmonstm:")
    if any(c.isspace() for c in prefix) or len(prefix) > 200:
        raise ConfigError(f"bus URL: prefix={prefix!r} must be at most 200 characters, no spaces")
    dup_window = _duration(ours, "dup_window", 120.0)
    return RedisConfig(
        client_url=urlunsplit(parts._replace(query=urlencode(theirs))),
        prefix=prefix,
        maxlen=_integer(ours, "maxlen", 1_000_000, 1, 2**62),
        dup_window_s=dup_window,
        ack_wait_s=_duration(ours, "ack_wait", 30.0),
        publish_timeout_s=_duration(ours, "publish_timeout", 30.0),
        max_inflight=_integer(ours, "max_inflight", 1024, 1, 1_000_000),
    )


def _integer(params: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"bus URL: {key}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"bus URL: {key}={value} must be within {low}..{high}")
    return value


def _duration(params: dict[str, str], key: str, default: float) -> float:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = parse_duration(raw)
    except ValueError as exc:
        raise ConfigError(f"bus URL: {key}={raw!r}: {exc}") from None
    if value < 0.001:
        raise ConfigError(f"bus URL: {key}={raw!r} must be at least 1 ms")
    return value
