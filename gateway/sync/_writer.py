"""Apply outbox entries to one gateway's Redis keys, idempotently, with one Lua script.

Keys (see docs/sync.md)::

    edge:{gw}:alerts            stream  one entry per alert state change (alert JSON fields)
    edge:{gw}:windows           stream  window results (window JSON fields), MAXLEN ~ cap
    edge:{gw}:device:<device>   hash    window:<sensor>, alert:<id>, active_alerts, last_alert,
                                        summary, sensor:<s>, value:<s>, last_seen, late, late:<s>
    edge:{gw}:sync              hash    applied:<outbox epoch> -> last outbox id applied
    edge:{gw}:dedupe:alerts     zset    alert_id|state of the newest alert changes (bounded)
    edge:{gw}:dedupe:windows    zset    dedupe keys of the newest windows (bounded)
    edge:gateways               hash    gateway id -> heartbeat JSON (no hash tag, own command)

Why a resend never duplicates: entries are applied strictly in outbox id order, and the script
that applies a chunk also raises the high-water mark to the last id it applied, atomically. A
crash (or a timeout) after the script ran but before the outbox cursor was acknowledged makes
the next run send the same entries again; every one has an id at or below the mark and is
skipped. Regenerated outputs that got a *new* outbox id (a journal replay after their first
row was pruned) are caught by the dedupe sets: ``alert_id|state`` for alerts, the dedupe key
for windows.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.exceptions as rexc

from gateway.state import StateError, StateUnavailable
from gateway.state.redis_connect import GATEWAYS_KEY, AnyRedis, key_for, redis_errors
from gateway.sync._errors import SinkRefused, SinkUnavailable
from gateway.sync._lua import APPLY_SCRIPT
from gateway.sync._outbox import OutboxEntryLike
from gateway.sync._records import ChunkArgs, build_chunk

__all__ = ["ApplyResult", "RedisWriter"]

MAX_ENTRIES_PER_SCRIPT = 1000
"""One script call applies at most this many entries (bounds how long Redis is busy)."""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one :meth:`RedisWriter.apply` did."""

    applied: int
    """Entries written."""
    skipped: int
    """Entries that were already there (resent after a crash or a timeout)."""
    high_water: int
    """Last outbox id Redis has applied."""


class RedisWriter:
    """Writes outbox entries of one gateway into Redis (single server or Cluster).

    Args:
        client: from :func:`gateway.state.redis_connect.connect_redis`.
        gateway_id: the gateway; its id is the keys' hash tag.
        target: how to name the server in messages (URL without credentials).
        windows_maxlen: approximate cap of the windows stream.
        outbox_epoch: identity of the outbox whose ids these are. Outbox ids restart when
            the state file is replaced; a new epoch starts a new high-water mark.
        alert_dedupe_keep: newest alert changes remembered for dedupe (oldest trimmed).
        window_dedupe_keep: newest window dedupe keys remembered.
        secrets: strings masked out of error messages.
    """

    def __init__(
        self,
        client: AnyRedis,
        gateway_id: str,
        *,
        target: str,
        windows_maxlen: int,
        outbox_epoch: str = "0",
        alert_dedupe_keep: int = 100_000,
        window_dedupe_keep: int = 20_000,
        secrets: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._gw = gateway_id
        self._target = target
        self._secrets = tuple(secrets)
        self.alerts_key = key_for(gateway_id, "alerts")
        self.windows_key = key_for(gateway_id, "windows")
        self.sync_key = key_for(gateway_id, "sync")
        self._fixed_keys = (
            self.sync_key,
            self.alerts_key,
            self.windows_key,
            key_for(gateway_id, "dedupe", "alerts"),
            key_for(gateway_id, "dedupe", "windows"),
        )
        self._hwm_field = f"applied:{outbox_epoch}"
        self._header = (self._hwm_field, windows_maxlen, alert_dedupe_keep, window_dedupe_keep)
        self._sha: str | None = None

    def device_key(self, device: str) -> str:
        """The hash of one device."""
        return key_for(self._gw, "device", device)

    async def apply(self, entries: Sequence[OutboxEntryLike]) -> ApplyResult:
        """Write ``entries`` (in id order); safe to call again with the same entries.

        Raises:
            SinkUnavailable: Redis cannot be reached; some leading chunks may be applied.
            SinkRefused: Redis refused (credentials, ACL, a key of the wrong type).
        """
        if not entries:
            return ApplyResult(0, 0, 0)
        chunks: list[ChunkArgs] = []
        need = 0
        for start in range(0, len(entries), MAX_ENTRIES_PER_SCRIPT):
            part = entries[start : start + MAX_ENTRIES_PER_SCRIPT]
            chunk = build_chunk(
                self._gw, part, fixed_keys=self._fixed_keys, header=self._header, need_id=need
            )
            chunks.append(chunk)
            need = chunk.last_id
        with self._errors():
            if len(chunks) == 1:
                replies = [await self._run(chunks[0])]
            else:
                replies = await self._run_pipelined(chunks)
        applied = sum(int(r[0]) for r in replies)
        skipped = sum(int(r[1]) for r in replies)
        return ApplyResult(applied, skipped, int(replies[-1][2]))

    async def high_water(self) -> int:
        """The last outbox id Redis has applied for this epoch (0 = none)."""
        with self._errors():
            value = await self._client.hget(self.sync_key, self._hwm_field)
        return int(value or 0)

    async def heartbeat(self, doc: Mapping[str, object]) -> None:
        """``HSET edge:gateways <gw> <json>`` (its own command: that key has no hash tag)."""
        with self._errors():
            await self._client.hset(GATEWAYS_KEY, self._gw, orjson.dumps(doc))

    async def _run(self, chunk: ChunkArgs) -> Any:
        nkeys = len(chunk.keys)
        if self._sha is not None:
            try:
                return await self._client.evalsha(self._sha, nkeys, *chunk.keys, *chunk.argv)
            except rexc.NoScriptError:
                pass  # flushed, restarted or failed over: EVAL loads it again
        reply = await self._client.eval(APPLY_SCRIPT, nkeys, *chunk.keys, *chunk.argv)
        if self._sha is None:
            self._sha = _sha1(APPLY_SCRIPT)
        return reply

    async def _run_pipelined(self, chunks: list[ChunkArgs]) -> list[Any]:
        if self._sha is None:
            # The first call loads the script; the rest of the batch can use its sha.
            return [await self._run(chunks[0]), *(await self._run_pipelined(chunks[1:]))]
        pipe = self._client.pipeline(transaction=False)
        for chunk in chunks:
            # execute_command: redis-py's ClusterPipeline blocks its evalsha() helper, but
            # routes a raw EVALSHA by its first key (all ours share one slot).
            pipe.execute_command("EVALSHA", self._sha, len(chunk.keys), *chunk.keys, *chunk.argv)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        out: list[Any] = []
        for index, reply in enumerate(replies):
            if isinstance(reply, rexc.NoScriptError):
                # A chunk never applies after a failed one (the script checks), so the rest
                # of the batch goes again one by one, loading the script on the way.
                out += [await self._run(chunk) for chunk in chunks[index:]]
                return out
            if isinstance(reply, Exception):
                raise reply
            out.append(reply)
        return out

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Convert Redis errors into :class:`SyncError` (keeping ``__cause__``)."""
        try:
            with redis_errors(self._target, secrets=self._secrets):
                yield
        except StateUnavailable as exc:
            raise SinkUnavailable(str(exc)) from exc.__cause__
        except StateError as exc:  # credentials, ACL, TLS, a key of the wrong type, ...
            raise SinkRefused(str(exc)) from exc.__cause__


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
