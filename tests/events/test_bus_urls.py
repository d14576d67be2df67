"""Bus URLs for NATS and Redis: defaults, every parameter, and errors naming the parameter."""

from __future__ import annotations

import pytest

from sysmonstm.errors import ConfigError
from sysmonstm.events.nats_bus import NatsBus
from sysmonstm.events.nats_config import parse_nats_url
from sysmonstm.events.nats_streams import stream_name
from sysmonstm.events.redis_bus import RedisBus
from sysmonstm.events.redis_config import parse_redis_url
from sysmonstm.events.registry import open_bus


def test_nats_url_defaults() -> None:
    c = parse_nats_url("nats://127.0.0.1")
    assert c.servers == ("nats://127.0.0.1:4222",)
    assert (c.stream_prefix, c.replicas, c.max_age_s, c.dup_window_s) == (
        "SYSMONSTM",
        1,
        7 * 86400,
        120,
    )
    assert (c.ack_wait_s, c.timeout_s, c.publish_timeout_s, c.max_inflight) == (30, 5, 30, 1024)
    assert (c.storage, c.max_bytes, c.tls, c.user, c.token) == ("file", -1, False, None, None)


def test_nats_url_reads_every_server_credentials_and_parameter() -> None:
    c = parse_nats_url(
        "nats://alice:s%40cret@n1:4222,n2:5222,[::1]?stream_prefix=PROD-1&replicas=3"
        "&max_age=36h&dup_window=5m&max_bytes=1000000&storage=memory&ack_wait=1m"
        "&timeout=2s&publish_timeout=1m&max_inflight=64&tls=true&tls_ca=/ca.pem"
        "&creds=/u.creds&name=agg-1"
    )
    assert c.servers == ("tls://n1:4222", "tls://n2:5222", "tls://[::1]:4222")
    assert (c.user, c.password) == ("alice", "s@cret")
    assert (c.stream_prefix, c.replicas, c.max_age_s, c.dup_window_s) == ("PROD-1", 3, 129600, 300)
    assert (c.max_bytes, c.storage, c.ack_wait_s, c.timeout_s) == (1_000_000, "memory", 60, 2)
    assert (c.publish_timeout_s, c.max_inflight, c.tls_ca, c.creds) == (
        60,
        64,
        "/ca.pem",
        "/u.creds",
    )
    assert c.name == "agg-1"
    assert parse_nats_url("nats://tok3n@h").token == "tok3n"  # noqa: S105 - a test value


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("replicas=7", "replicas"),
        ("replicas=two", "replicas"),
        ("max_age=soon", "max_age"),
        ("dup_window=1h&max_age=10m", "dup_window"),
        ("stream_prefix=a.b", "stream_prefix"),
        ("storage=tape", "storage"),
        ("tls=maybe", "tls"),
        ("ack_wait=0", "ack_wait"),
        ("colour=blue", "colour"),
        ("replicas=1&replicas=3", "replicas"),
    ],
)
def test_a_bad_nats_parameter_is_a_config_error_naming_it(query: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_nats_url(f"nats://127.0.0.1:4222?{query}")


def test_a_bad_nats_server_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="server"):
        parse_nats_url("nats://h1:4222,h 2:99")


def test_stream_names_never_collide_between_domains() -> None:
    assert stream_name("P", "metrics") == "P_METRICS"
    names = {stream_name("P", t) for t in ["metrics", "METRICS", "Metrics", "x4d", "m:1", "é"]}
    assert len(names) == 6
    assert all(n.replace("_", "").replace("-", "").isalnum() for n in names)


def test_redis_url_defaults_and_parameters() -> None:
    c = parse_redis_url("redis://127.0.0.1:6379/0")
    assert (c.prefix, c.maxlen, c.dup_window_s, c.ack_wait_s) == ("sysmonstm:", 1_000_000, 120, 30)
    assert (c.publish_timeout_s, c.max_inflight) == (30, 1024)
    c = parse_redis_url(
        "rediss://:pw@r1:6380/2?prefix={sm}:&maxlen=5000&dup_window=10m&ack_wait=1m"
        "&publish_timeout=5s&max_inflight=8&socket_timeout=10&ssl_cert_reqs=none"
    )
    assert (c.prefix, c.maxlen, c.dup_window_s, c.ack_wait_s) == ("{sm}:", 5000, 600, 60)
    assert (c.publish_timeout_s, c.max_inflight) == (5, 8)
    assert c.client_url == "rediss://:pw@r1:6380/2?socket_timeout=10&ssl_cert_reqs=none"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("maxlen=0", "maxlen"),
        ("maxlen=lots", "maxlen"),
        ("dup_window=forever", "dup_window"),
        ("prefix=a b", "prefix"),
        ("colour=blue", "colour"),
        ("ack_wait=0s", "ack_wait"),
    ],
)
def test_a_bad_redis_parameter_is_a_config_error_naming_it(query: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_redis_url(f"redis://127.0.0.1:6379/0?{query}")


def test_the_registry_opens_nats_and_redis_by_scheme_without_connecting() -> None:
    assert isinstance(open_bus("nats://127.0.0.1:1"), NatsBus)
    assert isinstance(open_bus("redis://127.0.0.1:1/0"), RedisBus)
    assert isinstance(open_bus("rediss://127.0.0.1:1/0"), RedisBus)
    with pytest.raises(ConfigError, match="max_age"):
        open_bus("nats://127.0.0.1?max_age=x")
