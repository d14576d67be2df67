"""Hot-tier documents in Redis (see ``HotTier.put_states`` … ``recent_docs``).

Per domain, beside the series keys (``store/redis_layout.py``):

- ``{prefix}hotdoc:{domain}:states`` hash: field = key, value = ``<time_ms> <JSON body>``;
  replaced by a script only when not newer than the document written, so a late write never
  wins. The hash expires ``expire_ms`` (a day) after the domain's last state write.
- ``{prefix}hotmark:{domain}:{key}``: a mark (``remember`` / ``known``), a plain key with
  its own expiry (SET PX), so marks expire one by one without a sweep.
- ``{prefix}hotdoc:{domain}:recent`` sorted set: score = time, member = ``[time, key, body]``
  as canonical JSON (an equal document is the same member: replays are harmless); trimmed
  to the window on every write, expiring ``2 * window`` after the last one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import redis.asyncio as aioredis

from sysmonstm.store.hot import HotDocument
from sysmonstm.store.hot_docs import from_member, from_state, member, state_value
from sysmonstm.store.redis_scripts import Call, Script

# KEYS[1]: the states hash. ARGV[1]: its TTL in ms; then field, value pairs where a value
# starts with its time and a space. Lua numbers are doubles: exact for ms timestamps.
PUT_STATES_LUA = """
local n = 0
for i = 2, #ARGV, 2 do
  local t = tonumber(string.match(ARGV[i + 1], '^(%-?%d+) '))
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if (not old) or tonumber(string.match(old, '^(%-?%d+) ')) <= t then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n
"""
PUT_STATES = Script(PUT_STATES_LUA)


class DocKeys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def states(self, domain: str) -> str:
        return f"{self.prefix}hotdoc:{domain}:states"

    def recent(self, domain: str) -> str:
        return f"{self.prefix}hotdoc:{domain}:recent"


class RedisDocs:
    """The document half of ``RedisHot``: every method is one round trip. Callers bound the
    time and convert failures (``RedisHot._calling``)."""

    def __init__(
        self, prefix: str, window_ms: int, expire_ms: int, now_ms: Callable[[], int]
    ) -> None:
        self.keys = DocKeys(prefix)
        self.window_ms = window_ms
        self.expire_ms = expire_ms
        self._now_ms = now_ms

    async def put_states(
        self, client: aioredis.Redis, domain: str, docs: Sequence[HotDocument]
    ) -> None:
        args: list[str | bytes | int] = [self.expire_ms]
        for doc in docs:
            args += [doc.key, state_value(doc)]
        await PUT_STATES.run(client, [Call((self.keys.states(domain),), args)])

    async def states(self, client: aioredis.Redis, domain: str) -> list[HotDocument]:
        held = cast(dict[bytes, bytes], await client.hgetall(self.keys.states(domain)))
        found = [from_state(k.decode(), v) for k, v in held.items()]
        return sorted(found, key=lambda d: (-d.time_ms, d.key))

    async def add_recent(
        self, client: aioredis.Redis, domain: str, docs: Sequence[HotDocument]
    ) -> None:
        cutoff = self._now_ms() - self.window_ms
        fresh = {member(d): d.time_ms for d in docs if d.time_ms >= cutoff}
        key = self.keys.recent(domain)
        pipe = client.pipeline(transaction=True)
        if fresh:
            pipe.zadd(key, fresh)
        pipe.zremrangebyscore(key, "-inf", f"({cutoff}")
        pipe.pexpire(key, 2 * self.window_ms)
        await pipe.execute()

    async def recent_docs(
        self, client: aioredis.Redis, domain: str, since_ms: int
    ) -> list[HotDocument]:
        low = max(since_ms, self._now_ms() - self.window_ms)
        held = cast(list[bytes], await client.zrangebyscore(self.keys.recent(domain), low, "+inf"))
        return [from_member(packed) for packed in held]


def mark_key(prefix: str, domain: str, key: str) -> str:
    return f"{prefix}hotmark:{domain}:{key}"
