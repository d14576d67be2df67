"""Redis key layout and the publish script.

| key | type | what |
|---|---|---|
| ``{prefix}bus:{domain}`` | stream | the domain's envelopes: fields ``id``, ``topic``, ``data`` |
| ``{prefix}bus-seen:{event id}`` | string, expires | a published id, for ``dup_window`` |
| ``{prefix}bus-clock`` | string | the last entry id handed out (``ms-seq``) |
| ``{prefix}bus-domains`` | set | every domain published so far |
| ``{prefix}bus-registry`` | stream | one entry per new domain, so readers of ``>`` find it |

The script hands out entry ids from one clock for all streams, so ids are unique and increase
across every domain: a reader of several streams merges them into publish order, and one id is a
position in all of them. A repeated event id within ``dup_window`` is not added again.
On Redis Cluster the keys must share a slot: put a hash tag in the prefix (``{sysmonstm}:``).
"""

from __future__ import annotations

from dataclasses import dataclass

PUBLISH_LUA = """
-- KEYS: stream, seen, clock, domains, registry
-- ARGV: event id, topic, data, dup_window ms, maxlen, domain token
if redis.call('EXISTS', KEYS[2]) == 1 then
  return false
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seq = 0
local last = redis.call('GET', KEYS[3])
if not last then
  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if top[1] then last = top[1][1] end
end
if last then
  local sep = string.find(last, '-', 1, true)
  local last_ms = tonumber(string.sub(last, 1, sep - 1))
  if last_ms >= ms then
    ms = last_ms
    seq = tonumber(string.sub(last, sep + 1)) + 1
  end
end
if redis.call('SADD', KEYS[4], ARGV[6]) == 1 then
  redis.call('XADD', KEYS[5], string.format('%d-%d', ms, seq), 'token', ARGV[6])
  seq = seq + 1
end
local id = string.format('%d-%d', ms, seq)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], id,
  'id', ARGV[1], 'topic', ARGV[2], 'data', ARGV[3])
redis.call('SET', KEYS[3], id)
redis.call('SET', KEYS[2], id, 'PX', ARGV[4])
return id
"""


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix."""

    prefix: str

    def stream(self, token: str) -> str:
        return f"{self.prefix}bus:{token}"

    def seen(self, event_id: str) -> str:
        return f"{self.prefix}bus-seen:{event_id}"

    @property
    def clock(self) -> str:
        return f"{self.prefix}bus-clock"

    @property
    def domains(self) -> str:
        return f"{self.prefix}bus-domains"

    @property
    def registry(self) -> str:
        return f"{self.prefix}bus-registry"


def parse_id(entry_id: bytes | str) -> tuple[int, int]:
    """``b"1796400000123-4"`` → ``(1796400000123, 4)``, comparable in stream order."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(position: tuple[int, int]) -> str:
    return f"{position[0]}-{position[1]}"


def before_ms(since_ms: int) -> tuple[int, int]:
    """The position just before every entry added at or after ``since_ms``."""
    return (since_ms - 1, 2**64 - 1) if since_ms > 0 else (0, 0)
