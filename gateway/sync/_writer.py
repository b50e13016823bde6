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

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.exceptions as rexc

from gateway.state import StateError, StateUnavailable
from gateway.state.redis_connect import GATEWAYS_KEY, AnyRedis, key_for, redis_errors
from gateway.sync._errors import SinkRefused, SinkUnavailable, SyncError
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
        window_dedupe_keep: newest window dedupe keys remembered; 0 (the default) keeps no
            window dedupe set: the high-water mark covers resends, and the store never
            re-inserts an output it has seen (see docs/sync.md). Set it for an outbox that can.
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
        window_dedupe_keep: int = 0,
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

    async def apply(
        self, entries: Sequence[OutboxEntryLike], *, chunk_size: int = MAX_ENTRIES_PER_SCRIPT
    ) -> ApplyResult:
        """Write ``entries`` (in id order); safe to call again with the same entries.

        Raises:
            SinkUnavailable: Redis cannot be reached; leading chunks may be applied
                (``done_upto`` says up to which id).
            SinkRefused: Redis refused (credentials, ACL, a key of the wrong type).
        """
        stream = ChunkStream(self, chunk_size)
        try:
            await stream.submit(entries)
            await stream.flush()
        finally:
            await stream.aclose()
        return ApplyResult(stream.applied, stream.skipped, stream.high_water)

    def prepare(self, entries: Sequence[OutboxEntryLike], need_id: int = 0) -> ChunkArgs:
        """The script's arguments for one chunk (pure CPU; no I/O)."""
        return build_chunk(
            self._gw, entries, fixed_keys=self._fixed_keys, header=self._header, need_id=need_id
        )

    async def send(self, chunk: ChunkArgs) -> ApplyResult:
        """Run the script for one prepared chunk (EVALSHA, or EVAL when Redis lost it)."""
        with self._errors():
            reply = await self._run(chunk)
        return ApplyResult(int(reply[0]), int(reply[1]), int(reply[2]))

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


class ChunkStream:
    """Applies chunks strictly in order with one in flight: chunk k+1 is built (CPU) while
    Redis runs chunk k, and sent only after k's reply, so the order never depends on which
    pooled connection carries a chunk. The script's ``need_id`` check backs this up.

    ``confirmed`` lags by the chunk in flight until :meth:`flush`.
    """

    def __init__(self, writer: RedisWriter, chunk_size: int) -> None:
        if chunk_size < 1:
            msg = f"chunk_size must be at least 1, got {chunk_size}"
            raise ValueError(msg)
        self._writer = writer
        self._chunk_size = min(chunk_size, MAX_ENTRIES_PER_SCRIPT)
        self._inflight: tuple[asyncio.Task[ApplyResult], int] | None = None
        self._last_sent = 0
        self.confirmed = 0
        """Last outbox id Redis confirmed (applied or already had) through this stream."""
        self.applied = 0
        self.skipped = 0
        self.high_water = 0

    async def submit(self, entries: Sequence[OutboxEntryLike]) -> int:
        """Send ``entries`` (after everything submitted before); the id confirmed so far.

        Raises:
            SyncError: an earlier chunk failed (``done_upto`` = what was confirmed); nothing
                after it was sent.
        """
        for start in range(0, len(entries), self._chunk_size):
            part = entries[start : start + self._chunk_size]
            chunk = self._writer.prepare(part, need_id=self._last_sent)
            await self._settle()
            task = asyncio.create_task(self._writer.send(chunk), name="gateway[sync].redis.send")
            self._inflight = (task, chunk.last_id)
            self._last_sent = chunk.last_id
            await asyncio.sleep(0)  # let the task write the command before building on
        return self.confirmed

    async def flush(self) -> int:
        """Wait for the chunk in flight; the id confirmed."""
        await self._settle()
        return self.confirmed

    async def aclose(self) -> None:
        """Cancel the chunk in flight (used on shutdown; a resend is skipped by Redis)."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None and not inflight[0].done():
            inflight[0].cancel()
        if inflight is not None:
            await asyncio.wait([inflight[0]])
            if not inflight[0].cancelled():
                inflight[0].exception()  # retrieved: no "never retrieved" warning

    async def _settle(self) -> None:
        inflight = self._inflight
        if inflight is None:
            return
        task, last_id = inflight
        try:
            # Shielded: cancelling the caller must stay a cancellation. Awaiting the task
            # itself would pass the cancel into it, redis-py would turn that into a
            # connection error, and the caller would see a SyncError instead and carry on
            # (a stop that does not stop). aclose() cancels a send still in flight.
            result = await asyncio.shield(task)
        except SyncError as exc:
            self._inflight = None
            self._last_sent = 0  # the next chunk starts again from the cursor
            exc.done_upto = max(exc.done_upto, self.confirmed)
            raise
        self._inflight = None
        self.applied += result.applied
        self.skipped += result.skipped
        self.high_water = result.high_water
        self.confirmed = max(self.confirmed, min(last_id, result.high_water))
