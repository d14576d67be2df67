"""The Lua the Redis hot tier runs server side, and how it is called.

One ``EVALSHA`` applies a whole ``write(batches)``: every key of a source is updated in one
atomic step and a late batch is compared with the stored frame without a round trip. The
client sends a msgpack of the batches' small fields plus one binary argument per batch
(redis-py's cost is per argument, not per byte) and the script builds the key names from
the prefix, so the hot tier wants a standalone Redis (or
a primary under Sentinel), not Redis Cluster. Scripts are loaded by SHA; after a server
restart (empty script cache) the first call loads it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

# ARGV[1]: msgpack [prefix, recent ttl ms, expire ms, layout ttl ms, '(' .. recent cutoff,
#   '(' .. sources cutoff].
# ARGV[2]: msgpack list, per batch: [domain, source id, name, labels (JSON), interval ms,
#   first t, last t, layout id, layout (JSON; '' when the client believes it is stored),
#   frame length]. (Redis' cmsgpack knows no bin type: only strings and numbers here.)
# ARGV[2 + i]: batch i's frame (last t + values) then its recent entry (none when older
#   than the window).
# Returns the 1-based indexes of batches skipped because their layout was not stored; the
# client sends those again with their layout.
WRITE_LUA = """
local head = cmsgpack.unpack(ARGV[1])
local prefix, recent_ttl, expire, layout_ttl = head[1], head[2], head[3], head[4]
local recent_cut, sources_cut = head[5], head[6]
local batches = cmsgpack.unpack(ARGV[2])
local missing, domains = {}, {}
for i = 1, #batches do
  local b = batches[i]
  local base = prefix .. 'hot:' .. b[1] .. ':' .. b[2]
  local layout = base .. ':layout:' .. b[8]
  local known = true
  if b[9] ~= '' then
    redis.call('SET', layout, b[9], 'PX', layout_ttl)
  else
    known = redis.call('PEXPIRE', layout, layout_ttl) == 1
  end
  if not known then
    missing[#missing + 1] = i
  else
    local t, blob, cut = b[7], ARGV[2 + i], b[10]
    local latest = base .. ':latest'
    local old = redis.call('HGET', latest, b[8])
    if (not old) or struct.unpack('<i8', old) <= t then
      redis.call('HSET', latest, b[8], string.sub(blob, 1, cut))
    end
    redis.call('PEXPIRE', latest, expire)
    local info = base .. ':info'
    local first = tonumber(redis.call('HGET', info, 'first_seen'))
    if (not first) or b[6] < first then first = b[6] end
    redis.call('HSET', info, 'name', b[3], 'labels', b[4], 'interval', b[5], 'first_seen', first)
    redis.call('PEXPIRE', info, expire)
    local sources = prefix .. 'hot:' .. b[1] .. ':sources'
    redis.call('ZADD', sources, 'GT', t, b[2])
    domains[sources] = true
    local recent = base .. ':recent'
    if #blob > cut then redis.call('ZADD', recent, t, string.sub(blob, cut + 1)) end
    redis.call('ZREMRANGEBYSCORE', recent, '-inf', recent_cut)
    redis.call('PEXPIRE', recent, recent_ttl)
  end
end
for sources in pairs(domains) do
  redis.call('ZREMRANGEBYSCORE', sources, '-inf', sources_cut)
  redis.call('PEXPIRE', sources, expire)
end
return missing
"""


@dataclass(frozen=True, slots=True)
class Call:
    """One script invocation: its keys and arguments."""

    keys: Sequence[str]
    args: Sequence[str | bytes | int]


class Script:
    """A Lua script run by SHA, reloaded when the server does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def load(self, client: aioredis.Redis) -> None:
        await client.script_load(self.source)

    async def run(self, client: aioredis.Redis, calls: Sequence[Call]) -> list[object]:
        """Run every call in one round trip (a pipeline when more than one); results in
        order. Calls must be idempotent: after a NOSCRIPT they all run again."""
        try:
            return await self._run(client, calls)
        except NoScriptError:
            await self.load(client)
            return await self._run(client, calls)

    async def _run(self, client: aioredis.Redis, calls: Sequence[Call]) -> list[object]:
        if len(calls) == 1:
            call = calls[0]
            return [await client.evalsha(self.sha, len(call.keys), *call.keys, *call.args)]
        pipe = client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(self.sha, len(call.keys), *call.keys, *call.args)
        results: list[object] = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results


WRITE = Script(WRITE_LUA)
