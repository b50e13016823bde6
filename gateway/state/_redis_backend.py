"""The Redis backend: single server or Redis Cluster, TLS and ACL via ``[redis]``.

Keys (the ``{gateway_id}`` hash tag keeps them all in one Cluster slot, so every batch can be
one ``MULTI``/``EXEC``)::

    edge:{gw}:kv:<ns>:<key>        string   "<expires_at|-1>:<value>"; native expiry too
                                            (SET ... PX); the stored expiry is checked
                                            against the gateway's clock on load, so skew
                                            between the two clocks never returns expired state
    edge:{gw}:kvidx:<ns>           set      keys of the namespace (expired members are
                                            removed lazily on load)
    edge:{gw}:kvck:<ns>:<id>       hash     checkpoint <id>: key -> "<expires_at|-1>:<value>"
    edge:{gw}:kvcks:<ns>           hash     checkpoint id -> JSON {name, created_at, keys};
                                            an id is listed only once its hash is complete
    edge:{gw}:kvck-seq             string   checkpoint id counter

A batch is one Lua script call, atomic on the server: a round trip per batch, never per
operation. How durable a write is depends on the server's persistence (``appendfsync``); the
state layer does not change the server's settings.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence

from redis.commands.core import AsyncScript

from gateway.config import RedisConfig
from gateway.state._backend import CheckpointInfo, Entry, StateBackend
from gateway.state._errors import StateUsageError
from gateway.state.redis_connect import (
    AnyRedis,
    connect_redis,
    key_for,
    ping_redis,
    redacted_url,
    redis_errors,
)

__all__ = ["RedisBackend"]

CHUNK = 1_000

# One batch, atomically, in one round trip (a Cluster's MULTI pipeline costs a round trip per
# command in redis-py). KEYS: index, upsert keys..., delete keys...; ARGV: n_up, n_del,
# (value, px)... for the upserts, then the index members of the upserts and of the deletes.
_WRITE_BATCH = """
local n_up, n_del = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, n_up do
  local px = tonumber(ARGV[2 + 2 * i])
  if px > 0 then
    redis.call('SET', KEYS[1 + i], ARGV[1 + 2 * i], 'PX', px)
  else
    redis.call('SET', KEYS[1 + i], ARGV[1 + 2 * i])
  end
end
local base = 2 + 2 * n_up
local chunk = {}
for i = 1, n_up do
  chunk[#chunk + 1] = ARGV[base + i]
  if #chunk == 1000 then
    redis.call('SADD', KEYS[1], unpack(chunk))
    chunk = {}
  end
end
if #chunk > 0 then redis.call('SADD', KEYS[1], unpack(chunk)) end
for i = 1, n_del do
  redis.call('DEL', KEYS[1 + n_up + i])
  redis.call('SREM', KEYS[1], ARGV[base + n_up + i])
end
return n_up + n_del
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _encode(value: bytes, expires: int | None) -> bytes:
    return b"%d:%b" % (-1 if expires is None else expires, value)


def _decode(blob: bytes | str, now_ms: int) -> Entry | None:
    """The entry, or ``None`` when it has expired by ``now_ms``."""
    head, value = _raw(blob).split(b":", 1)
    expires = int(head)
    if expires == -1:
        return value, None
    return (value, expires) if expires > now_ms else None


def _chunks(items: Sequence[str], size: int = CHUNK) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class RedisBackend(StateBackend):
    """Operator state in Redis under ``edge:{<gateway_id>}:kv...``."""

    kind = "redis"

    def __init__(
        self,
        cfg: RedisConfig,
        gateway_id: str,
        *,
        keep_checkpoints: int = 3,
        client: AnyRedis | None = None,
    ) -> None:
        super().__init__(keep_checkpoints=keep_checkpoints)
        self.cfg = cfg
        self.gateway_id = gateway_id
        key_for(gateway_id)  # validates the id early
        self._client = client
        self._owns_client = client is None
        self._target = redacted_url(cfg.url)
        password = cfg.password_value()
        self._secrets = (password,) if password else ()
        self._write_script: AsyncScript | None = None

    async def _open(self) -> None:
        if self._client is None:
            self._client = connect_redis(
                self.cfg, client_name=f"edge-gateway:{self.gateway_id}:state"
            )
        try:
            await ping_redis(self._client, self.cfg)
            self._write_script = self._client.register_script(_WRITE_BATCH)
        except BaseException:
            if self._owns_client:
                await self._client.aclose()
                self._client = None
            raise

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    @property
    def client(self) -> AnyRedis:
        """The redis-py client (shared with nothing unless one was given)."""
        self._check_open()
        assert self._client is not None
        return self._client

    def _key(self, ns: str, key: str) -> str:
        return key_for(self.gateway_id, "kv", ns, key)

    def _index(self, ns: str) -> str:
        return key_for(self.gateway_id, "kvidx", ns)

    def _ckpt(self, ns: str, checkpoint_id: int) -> str:
        return key_for(self.gateway_id, "kvck", ns, str(checkpoint_id))

    def _ckpts(self, ns: str) -> str:
        return key_for(self.gateway_id, "kvcks", ns)

    async def load(self, ns: str, now_ms: int) -> dict[str, Entry]:
        client = self.client
        out: dict[str, Entry] = {}
        with redis_errors(self._target, secrets=self._secrets):
            members = sorted(_text(m) for m in await client.smembers(self._index(ns)))
            gone: list[str] = []
            for chunk in _chunks(members):
                async with client.pipeline(transaction=False) as pipe:
                    for key in chunk:
                        pipe.get(self._key(ns, key))
                    replies = await pipe.execute()
                for key, blob in zip(chunk, replies, strict=True):
                    entry = None if blob is None else _decode(blob, now_ms)
                    if entry is None:
                        gone.append(key)
                    else:
                        out[key] = entry
            for chunk in _chunks(gone):
                await client.srem(self._index(ns), *chunk)
        return out

    async def write_batch(
        self, ns: str, upserts: Mapping[str, Entry], deletes: Collection[str], now_ms: int
    ) -> None:
        assert self._write_script is not None
        keys: list[str] = [self._index(ns)]
        values: list[bytes | int | str] = []
        members: list[str] = []
        removed = list(deletes)
        for key, (value, expires) in upserts.items():
            if expires is None:
                values.extend((b"-1:" + value, 0))
            elif expires > now_ms:
                values.extend((b"%d:%b" % (expires, value), expires - now_ms))
            else:
                removed.append(key)
                continue
            keys.append(self._key(ns, key))
            members.append(key)
        n_up = len(members)
        keys.extend(self._key(ns, key) for key in removed)
        args: list[bytes | int | str] = [n_up, len(removed), *values, *members, *removed]
        with redis_errors(self._target, secrets=self._secrets):
            await self._write_script(keys=keys, args=args)

    async def checkpoint(
        self, ns: str, name: str, entries: Mapping[str, Entry], now_ms: int
    ) -> int:
        client = self.client
        with redis_errors(self._target, secrets=self._secrets):
            checkpoint_id = int(await client.incr(key_for(self.gateway_id, "kvck-seq")))
            info = json.dumps({"name": name, "created_at": now_ms, "keys": len(entries)})
            listed = await client.hgetall(self._ckpts(ns))
            ids = sorted(int(i) for i in listed)
            dropped = ids[: max(0, len(ids) + 1 - self.keep_checkpoints)]
            async with client.pipeline(transaction=True) as pipe:
                target = self._ckpt(ns, checkpoint_id)
                pipe.delete(target)
                items = [(key, _encode(value, exp)) for key, (value, exp) in entries.items()]
                for i in range(0, len(items), CHUNK):
                    pipe.hset(target, mapping=dict(items[i : i + CHUNK]))
                pipe.hset(self._ckpts(ns), str(checkpoint_id), info)
                for old in dropped:
                    pipe.delete(self._ckpt(ns, old))
                    pipe.hdel(self._ckpts(ns), str(old))
                await pipe.execute()
        return checkpoint_id

    async def restore(self, ns: str, checkpoint_id: int, now_ms: int) -> dict[str, Entry]:
        client = self.client
        with redis_errors(self._target, secrets=self._secrets):
            listed = await client.hexists(self._ckpts(ns), str(checkpoint_id))
            if not listed:
                msg = f"no checkpoint {checkpoint_id} for operator {ns!r}"
                raise StateUsageError(msg)
            raw = await client.hgetall(self._ckpt(ns, checkpoint_id))
            entries: dict[str, Entry] = {}
            for field, blob in raw.items():
                entry = _decode(blob, now_ms)
                if entry is not None:
                    entries[_text(field)] = entry
            current = [_text(m) for m in await client.smembers(self._index(ns))]
            async with client.pipeline(transaction=True) as pipe:
                for chunk in _chunks(current):
                    pipe.delete(*(self._key(ns, k) for k in chunk))
                pipe.delete(self._index(ns))
                await pipe.execute()
        await self.write_batch(ns, entries, (), now_ms)
        return entries

    async def list_checkpoints(self, ns: str) -> list[CheckpointInfo]:
        with redis_errors(self._target, secrets=self._secrets):
            listed = await self.client.hgetall(self._ckpts(ns))
        out = []
        for ident, blob in listed.items():
            info = json.loads(blob)
            out.append(CheckpointInfo(int(ident), info["name"], info["created_at"], info["keys"]))
        return sorted(out, key=lambda c: c.id)
