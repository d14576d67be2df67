"""The JetStream layout: one stream per domain (the first topic token), kept in sync.

Stream ``{prefix}_{DOMAIN}`` stores subjects ``{prefix}.s.{domain}`` and ``{prefix}.s.{domain}.>``
(the topic under ``{prefix}.s``), and republishes each message it stores to ``{prefix}.l.{topic}``.
Live subscribers listen there with plain NATS subscriptions: they see every stored message in
stream order, and never a duplicate the stream refused. Putting every subject under the prefix
lets several deployments (or test runs) share one server without their streams overlapping.
"""

from __future__ import annotations

import asyncio
import re

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext, api

from sysmonstm.errors import BackendError
from sysmonstm.events.nats_config import NatsConfig

_PLAIN_TOKEN = re.compile(r"^[a-z0-9_-]+$")


def stream_name(prefix: str, token: str) -> str:
    """``{prefix}_{TOKEN}``: lower-case tokens upper-cased, any other token hex-encoded after
    an ``x`` (never produced by upper-casing), so two domains never share a stream."""
    if _PLAIN_TOKEN.match(token):
        return f"{prefix}_{token.upper()}"
    return f"{prefix}_x{token.encode().hex()}"


def stored_subject(prefix: str, topic: str) -> str:
    return f"{prefix}.s.{topic}"


def live_subject(prefix: str, pattern: str) -> str:
    return f"{prefix}.l.{pattern}"


def backend_error(what: str, exc: BaseException) -> BackendError:
    """A NATS failure as our ``BackendError``, with a message that says what failed."""
    if isinstance(exc, nats.js.errors.APIError):
        detail = f"{exc.description or 'error'} (code {exc.code}, err_code {exc.err_code})"
    elif isinstance(exc, TimeoutError | nats.errors.TimeoutError):
        detail = "no answer in time"
    elif isinstance(exc, nats.errors.ConnectionClosedError):
        detail = "the connection is closed"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return BackendError(f"NATS: {what}: {detail}")


class Streams:
    """Creates each domain's stream on first use, or updates it when its settings differ."""

    def __init__(self, js: JetStreamContext, config: NatsConfig) -> None:
        self._js = js
        self._config = config
        self._ready: set[str] = set()
        self._lock = asyncio.Lock()

    def ready(self, token: str) -> bool:
        """Whether the stream for ``token`` was already checked (no await needed)."""
        return stream_name(self._config.stream_prefix, token) in self._ready

    def forget(self, token: str) -> None:
        """Check the stream again on next use (it may have been deleted)."""
        self._ready.discard(stream_name(self._config.stream_prefix, token))

    async def ensure(self, token: str) -> str:
        """The stream for ``token``, created or brought to the configured settings."""
        name = stream_name(self._config.stream_prefix, token)
        if name in self._ready:
            return name
        async with self._lock:
            if name not in self._ready:
                try:
                    await self._sync(name, token)
                except (nats.errors.Error, TimeoutError) as exc:
                    raise backend_error(f"preparing stream {name}", exc) from exc
                self._ready.add(name)
        return name

    def wanted(self, name: str, token: str) -> api.StreamConfig:
        c = self._config
        prefix = c.stream_prefix
        return api.StreamConfig(
            name=name,
            subjects=[stored_subject(prefix, token), stored_subject(prefix, f"{token}.>")],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE if c.storage == "file" else api.StorageType.MEMORY,
            discard=api.DiscardPolicy.OLD,
            max_age=c.max_age_s,
            max_bytes=c.max_bytes,
            duplicate_window=c.dup_window_s,
            num_replicas=c.replicas,
            republish=api.RePublish(src=f"{prefix}.s.>", dest=f"{prefix}.l.>"),
        )

    async def _sync(self, name: str, token: str) -> None:
        want = self.wanted(name, token)
        try:
            info = await self._js.stream_info(name)
        except nats.js.errors.NotFoundError:
            try:
                await self._js.add_stream(want)
            except nats.js.errors.BadRequestError:
                info = await self._js.stream_info(name)  # created meanwhile by someone else
            else:
                return
        have = info.config
        kept, asked = _value(have.storage), _value(want.storage)
        if kept != asked:
            raise BackendError(
                f"NATS: stream {name} keeps {kept} storage, the URL asks for {asked}; "
                "JetStream cannot change that (delete the stream, or change storage=)"
            )
        if _differs(have, want):
            await self._js.update_stream(
                have.evolve(
                    subjects=want.subjects,
                    max_age=want.max_age,
                    max_bytes=want.max_bytes,
                    duplicate_window=want.duplicate_window,
                    num_replicas=want.num_replicas,
                    republish=want.republish,
                )
            )


def _value(enum_or_text: object) -> str:
    return str(getattr(enum_or_text, "value", enum_or_text))


def _differs(have: api.StreamConfig, want: api.StreamConfig) -> bool:
    def close(a: float | None, b: float | None) -> bool:
        return abs((a or 0.0) - (b or 0.0)) < 1e-3

    rp_have, rp_want = have.republish, want.republish
    assert rp_want is not None
    return (
        sorted(have.subjects or []) != sorted(want.subjects or [])
        or not close(have.max_age, want.max_age)
        or not close(have.duplicate_window, want.duplicate_window)
        or (have.max_bytes or -1) != (want.max_bytes or -1)
        or (have.num_replicas or 1) != (want.num_replicas or 1)
        or rp_have is None
        or (rp_have.src, rp_have.dest) != (rp_want.src, rp_want.dest)
    )
