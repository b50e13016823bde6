"""The gateway store in Redis (single server or Cluster): for gateways without a local disk
worth the name. Every key is ``edge:{<gateway_id>}:store:...`` (one Cluster slot), and every
write is atomic on the server: a Lua script (``commit_batch``, ``outbox_ack``) or a
``MULTI``/``EXEC`` pipeline (``write_checkpoint``).

Keys (``S = edge:{gw}:store``)::

    S:meta        hash  epoch, seq (last journal seq), outbox_seq, rows, bytes, ckpt_seq,
                        dropped_windows, dropped_alerts
    S:journal     zset  score seq, member "<seq>|<JSON [device, sensor, value, ts, arrival,
                        historical]>"
    S:ob:payload  hash  outbox id -> payload
    S:ob:meta     hash  outbox id -> "<kind>|<created_at>|<journal_seq>|<size>|<dedupe_key>"
    S:ob:ids      zset  pending outbox ids (score = id)
    S:ob:other    zset  pending non-alert ids: the quota drops from here first
    S:ob:alert    zset  pending alert ids: dropped only when nothing else is left
    S:ob:keys     hash  dedupe key -> id of a pending entry
    S:ob:done     zset  dedupe keys delivered or dropped (score = journal seq), kept until a
                        checkpoint covers them
    S:cursors     hash  cursor name -> position
    S:snaps       hash  key -> JSON snapshot of the newest checkpoint (written incrementally)
    S:ckpts       hash  checkpoint id -> JSON {journal_seq, created_at, keys (how many it wrote)}
    S:parked      hash  key -> JSON snapshot of a passivated device

Only the newest checkpoint's snapshots are kept (``S:snaps`` is updated in place, atomically);
``keep_checkpoints`` bounds the metadata. Durability is the server's: with
``appendonly yes`` and ``appendfsync always`` a commit survives a server power cut, with
``everysec`` up to a second may be lost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any

from redis.commands.core import AsyncScript

from gateway.config import RedisConfig
from gateway.state._store import (
    GatewayStore,
    NowMs,
    dump_snapshot,
    entry_size,
    load_snapshot,
    new_epoch,
)
from gateway.state._types import Checkpoint, JournalEntry, OutboxEntry, OutboxStats
from gateway.state.redis_connect import (
    AnyRedis,
    connect_redis,
    key_for,
    ping_redis,
    redacted_url,
    redis_errors,
)

__all__ = ["RedisGatewayStore"]

QUOTA_LOW_WATER = 0.95
REPLAY_CHUNK = 2_000
CHUNK = 1_000

# KEYS: 1 meta, 2 journal, 3 payload, 4 rowmeta, 5 ids, 6 other, 7 alert, 8 keys, 9 done,
# 10 cursors
_REMOVE = """
local function remove(id)
  local meta = redis.call('HGET', KEYS[4], id)
  if not meta then return nil, 0 end
  local kind, _, jseq, size, key = string.match(meta, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  size = tonumber(size)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[7], id)
  redis.call('HDEL', KEYS[8], key)
  redis.call('ZADD', KEYS[9], jseq, key)
  redis.call('HINCRBY', KEYS[1], 'rows', -1)
  redis.call('HINCRBY', KEYS[1], 'bytes', -size)
  return kind, size
end
"""

_COMMIT = (
    _REMOVE
    + """
local nj = tonumber(ARGV[1])
local no = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
local target = tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local expected = tonumber(ARGV[5])
if nj > 0 and last ~= expected then
  if last == expected + nj then
    -- the same batch again (a client retry after a lost reply): already applied
    return {last - nj + 1, last, 0, 0}
  end
  return redis.error_reply('journal seq is ' .. last .. ', expected ' .. expected ..
    ': another writer uses this gateway id')
end
local first = last + 1
if nj > 0 then
  last = redis.call('HINCRBY', KEYS[1], 'seq', nj)
  first = last - nj + 1
  local args = {}
  for i = 1, nj do
    local seq = first + i - 1
    args[#args + 1] = seq
    args[#args + 1] = seq .. '|' .. ARGV[5 + i]
    if #args >= 1000 then
      redis.call('ZADD', KEYS[2], unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', KEYS[2], unpack(args)) end
end
local base = 5 + nj
local rows, added = 0, 0
for i = 0, no - 1 do
  local at = base + 5 * i
  local kind, key, payload, created = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local size = tonumber(ARGV[at + 5])
  if redis.call('HEXISTS', KEYS[8], key) == 0 and not redis.call('ZSCORE', KEYS[9], key) then
    local id = redis.call('HINCRBY', KEYS[1], 'outbox_seq', 1)
    redis.call('HSET', KEYS[3], id, payload)
    local meta = kind .. '|' .. created .. '|' .. last .. '|' .. size .. '|' .. key
    redis.call('HSET', KEYS[4], id, meta)
    redis.call('ZADD', KEYS[5], id, id)
    if kind == 'alert' then
      redis.call('ZADD', KEYS[7], id, id)
    else
      redis.call('ZADD', KEYS[6], id, id)
    end
    redis.call('HSET', KEYS[8], key, id)
    rows = rows + 1
    added = added + size
  end
end
redis.call('HINCRBY', KEYS[1], 'rows', rows)
local bytes = redis.call('HINCRBY', KEYS[1], 'bytes', added)
local dropped = {0, 0}
if bytes > quota then
  for pass = 1, 2 do
    local zset = KEYS[5 + pass]
    while bytes > target do
      local ids = redis.call('ZRANGE', zset, 0, 99)
      if #ids == 0 then break end
      for _, id in ipairs(ids) do
        if bytes <= target then break end
        local _, size = remove(id)
        bytes = bytes - size
        dropped[pass] = dropped[pass] + 1
      end
    end
  end
  redis.call('HINCRBY', KEYS[1], 'dropped_windows', dropped[1])
  redis.call('HINCRBY', KEYS[1], 'dropped_alerts', dropped[2])
end
return {first, last, dropped[1], dropped[2]}
"""
)

_ACK = (
    _REMOVE
    + """
local top = tonumber(redis.call('HGET', KEYS[1], 'outbox_seq') or '0')
local upto = math.min(tonumber(ARGV[2]), top)
redis.call('HSET', KEYS[10], ARGV[1], upto)
local floor = math.min(tonumber(ARGV[3]), top)
local n = 0
while true do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', floor, 'LIMIT', 0, 500)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    remove(id)
    n = n + 1
  end
end
return {n, upto}
"""
)


# KEYS: 1 meta. ARGV: 1 a new epoch. The keys' epoch, made once; "0" for keys that were
# already used before epochs existed (their Redis sink mark is applied:0).
_EPOCH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch then return epoch end
if redis.call('HEXISTS', KEYS[1], 'seq') == 1 or redis.call('HEXISTS', KEYS[1], 'outbox_seq') == 1
then
  epoch = '0'
else
  epoch = ARGV[1]
end
redis.call('HSET', KEYS[1], 'epoch', epoch)
return epoch
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisGatewayStore(GatewayStore):
    """:class:`GatewayStore` in Redis under ``edge:{<gateway_id>}:store:...``."""

    def __init__(
        self,
        cfg: RedisConfig,
        gateway_id: str,
        *,
        keep_checkpoints: int = 3,
        max_outbox_bytes: int = 256 * 1024 * 1024,
        now_ms: NowMs,
        client: AnyRedis | None = None,
    ) -> None:
        super().__init__(
            keep_checkpoints=keep_checkpoints, max_outbox_bytes=max_outbox_bytes, now_ms=now_ms
        )
        self.cfg = cfg
        self.gateway_id = gateway_id
        self._client = client
        self._owns_client = client is None
        self._target = redacted_url(cfg.url)
        password = cfg.password_value()
        self._secrets = (password,) if password else ()
        k = self._k
        self._meta = k("meta")
        self._journal = k("journal")
        self._snaps = k("snaps")
        self._ckpts = k("ckpts")
        self._parked = k("parked")
        self._outbox_keys = [
            self._meta,
            self._journal,
            k("ob:payload"),
            k("ob:meta"),
            k("ob:ids"),
            k("ob:other"),
            k("ob:alert"),
            k("ob:keys"),
            k("ob:done"),
            k("cursors"),
        ]
        self._next_seq = 1
        self._commit_script: AsyncScript | None = None
        self._ack_script: AsyncScript | None = None

    def _k(self, name: str) -> str:
        return key_for(self.gateway_id, "store", name)

    def _errors(self) -> Any:
        return redis_errors(self._target, secrets=self._secrets)

    @property
    def _redis(self) -> AnyRedis:
        self._check_open()
        assert self._client is not None
        return self._client

    async def _open(self) -> None:
        if self._client is None:
            self._client = connect_redis(
                self.cfg, client_name=f"edge-gateway:{self.gateway_id}:store"
            )
        try:
            await ping_redis(self._client, self.cfg)
            with self._errors():
                self._commit_script = self._client.register_script(_COMMIT)
                self._ack_script = self._client.register_script(_ACK)
                epoch = await self._client.eval(_EPOCH, 1, self._meta, new_epoch())
                self._epoch = _text(epoch)
                seq = await self._client.hget(self._meta, "seq")
                self._next_seq = int(seq or 0) + 1
                cursors = await self._client.hgetall(self._k("cursors"))
                for name, position in cursors.items():
                    self._cursors[_text(name)] = int(position)
        except BaseException:
            if self._owns_client:
                await self._client.aclose()
                self._client = None
            raise

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    # -- journal and outbox ----------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self._next_seq

    async def commit_batch(
        self, journal: Sequence[JournalEntry], outbox: Sequence[OutboxEntry]
    ) -> None:
        self._check_open()
        if not journal and not outbox:
            return
        assert self._commit_script is not None
        args: list[Any] = [
            len(journal),
            len(outbox),
            self.max_outbox_bytes,
            int(self.max_outbox_bytes * QUOTA_LOW_WATER),
            self._next_seq - 1,  # makes a retried call (lost reply) a no-op
        ]
        args.extend(
            json.dumps(
                [e.device, e.sensor, e.value, e.timestamp, e.arrival, int(e.historical)],
                separators=(",", ":"),
            )
            for e in journal
        )
        for e in outbox:
            args.extend((e.kind, e.dedupe_key, e.payload, e.created_at, entry_size(e)))
        with self._errors():
            _, last, _, _ = await self._commit_script(keys=self._outbox_keys, args=args)
        self._next_seq = int(last) + 1

    async def replay_journal(self, after_seq: int) -> AsyncIterator[JournalEntry]:
        position = after_seq
        while True:
            with self._errors():
                members: list[Any] = await self._redis.zrangebyscore(
                    self._journal, f"({position}", "+inf", start=0, num=REPLAY_CHUNK
                )
            for member in members:
                seq_text, body = _text(member).split("|", 1)
                device, sensor, value, ts, arrival, historical = json.loads(body)
                position = int(seq_text)
                yield JournalEntry(
                    position,
                    device,
                    sensor,
                    float(value),
                    int(ts),
                    int(arrival),
                    bool(historical),
                )
            if len(members) < REPLAY_CHUNK:
                return

    # -- checkpoints -----------------------------------------------------------------------

    async def write_checkpoint(
        self, changed: Mapping[str, Any], journal_seq: int, *, removed: Collection[str] = ()
    ) -> int:
        self._check_checkpoint(changed, journal_seq, removed)
        encoded = [(key, dump_snapshot(key, snap)) for key, snap in changed.items()]
        gone = list(removed)
        client = self._redis
        with self._errors():
            checkpoint_id = int(await client.hincrby(self._meta, "ckpt_seq", 1))
            listed = sorted(int(i) for i in await client.hkeys(self._ckpts))
            dropped = listed[: max(0, len(listed) + 1 - self.keep_checkpoints)]
            info = json.dumps(
                {
                    "journal_seq": journal_seq,
                    "created_at": self._now_ms(),
                    "keys": len(encoded) + len(gone),
                }
            )
            async with client.pipeline(transaction=True) as pipe:
                for i in range(0, len(encoded), CHUNK):
                    pipe.hset(self._snaps, mapping=dict(encoded[i : i + CHUNK]))
                for i in range(0, len(gone), CHUNK):
                    pipe.hdel(self._snaps, *gone[i : i + CHUNK])
                pipe.hset(self._ckpts, str(checkpoint_id), info)
                if dropped:
                    pipe.hdel(self._ckpts, *(str(i) for i in dropped))
                pipe.zremrangebyscore(self._journal, "-inf", journal_seq)
                pipe.zremrangebyscore(self._outbox_keys[8], "-inf", journal_seq)
                await pipe.execute()
        return checkpoint_id

    async def load_checkpoint(self) -> Checkpoint | None:
        client = self._redis
        with self._errors():
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._ckpts)
                pipe.hgetall(self._snaps)
                listed, raw = await pipe.execute()
        if not listed:
            return None
        newest = max(int(i) for i in listed)
        info = json.loads(listed.get(str(newest).encode(), listed.get(str(newest))))
        snapshots = {_text(k): load_snapshot(bytes(v)) for k, v in raw.items()}
        return Checkpoint(newest, int(info["journal_seq"]), snapshots, int(info["created_at"]))

    async def load_checkpointed(self, key: str) -> Any | None:
        with self._errors():
            data: Any = await self._redis.hget(self._snaps, key)
        return None if data is None else load_snapshot(data)

    # -- parked devices --------------------------------------------------------------------

    async def put_snapshot(self, key: str, snapshot: Any) -> None:
        data = dump_snapshot(key, snapshot)
        with self._errors():
            await self._redis.hset(self._parked, key, data)

    async def get_snapshot(self, key: str) -> Any | None:
        with self._errors():
            data: Any = await self._redis.hget(self._parked, key)
        return None if data is None else load_snapshot(data)

    async def delete_snapshot(self, key: str) -> None:
        with self._errors():
            await self._redis.hdel(self._parked, key)

    # -- outbox consumers ------------------------------------------------------------------

    async def outbox_read(self, cursor: str, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        position = max(self._check_cursor(cursor), after)
        client = self._redis
        with self._errors():
            ids: list[Any] = await client.zrangebyscore(
                self._outbox_keys[4], f"({position}", "+inf", start=0, num=max(0, limit)
            )
            if not ids:
                return []
            async with client.pipeline(transaction=True) as pipe:
                pipe.hmget(self._outbox_keys[3], ids)
                pipe.hmget(self._outbox_keys[2], ids)
                metas, payloads = await pipe.execute()
        out = []
        for ident, meta, payload in zip(ids, metas, payloads, strict=True):
            if meta is None or payload is None:
                continue  # removed between the two reads (quota)
            kind, created, _, _, key = _text(meta).split("|", 4)
            out.append(OutboxEntry(int(ident), kind, key, bytes(payload), int(created)))  # type: ignore[arg-type]
        return out

    async def outbox_ack(self, cursor: str, upto_id: int) -> None:
        position = self._check_cursor(cursor)
        if upto_id <= position:
            return
        assert self._ack_script is not None
        positions = {**self._cursors, cursor: upto_id}
        floor = min(positions[name] for name in self._registered)
        with self._errors():
            _, upto = await self._ack_script(keys=self._outbox_keys, args=[cursor, upto_id, floor])
        self._cursors[cursor] = max(position, int(upto))

    async def outbox_stats(self) -> OutboxStats:
        client = self._redis
        with self._errors():
            rows, size, dropped_w, dropped_a = await client.hmget(
                self._meta, ["rows", "bytes", "dropped_windows", "dropped_alerts"]
            )
            first: list[Any] = await client.zrange(self._outbox_keys[4], 0, 0)
            oldest = None
            if first:
                meta = await client.hget(self._outbox_keys[3], first[0])
                if meta is not None:
                    oldest = int(_text(meta).split("|", 2)[1])
        return OutboxStats(
            rows=int(rows or 0),
            bytes=int(size or 0),
            oldest_created_at=oldest,
            dropped_windows=int(dropped_w or 0),
            dropped_alerts=int(dropped_a or 0),
        )
