"""Store-and-forward from the outbox to Redis: :class:`RedisSync`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.config import RedisConfig, SyncConfig
from gateway.state.redis_connect import AnyRedis, connect_redis, redacted_url
from gateway.sync._drain import DrainLoop, wall_ms
from gateway.sync._errors import SyncError
from gateway.sync._outbox import Outbox, OutboxEntryLike, OutboxSignal
from gateway.sync._writer import ChunkStream, RedisWriter

__all__ = ["REDIS_CURSOR", "RedisSync", "redis_status_unconfigured"]

REDIS_CURSOR = "redis"
"""The outbox cursor of the Redis sink."""

_log = logging.getLogger("gateway.sync.redis")


def redis_status_unconfigured() -> dict[str, Any]:
    """The status block when there is no ``[redis]`` section."""
    return {
        "configured": False,
        "connected": False,
        "backlog_rows": 0,
        "backlog_bytes": 0,
        "oldest_age_s": None,
        "drain_per_s": 0.0,
        "last_error": None,
    }


class RedisSync(DrainLoop):
    """Drains the outbox into Redis (or Redis Cluster), in order, exactly once in effect.

    Every ``sync.heartbeat_interval`` it also writes the gateway's heartbeat to
    ``edge:gateways`` (which doubles as the probe that notices Redis coming back while
    the outbox is idle).

    Args:
        outbox: the state store (anything with the :class:`~gateway.sync.Outbox` methods).
        gateway_id: this gateway (the keys' hash tag).
        redis: the ``[redis]`` section.
        sync: the ``[sync]`` section (batch size, windows cap, heartbeat, retry cap).
        signal: set/notified by the runtime after each outbox commit.
        heartbeat: extra fields for the heartbeat JSON (e.g. the status message's counters);
            called on the event loop, must be quick.
        outbox_epoch: identity of the outbox file (e.g. a UUID made when it was created), so
            that a new state file (ids starting again at 1) is not mistaken for a resend.
        client: a ready client (tests, benchmarks); by default
            :func:`~gateway.state.redis_connect.connect_redis` builds one from ``redis``.
        now_ms: wall clock (epoch ms).
    """

    sink_name = "redis"

    def __init__(
        self,
        outbox: Outbox,
        *,
        gateway_id: str,
        redis: RedisConfig,
        sync: SyncConfig,
        signal: OutboxSignal | asyncio.Event | None = None,
        heartbeat: Callable[[], Mapping[str, object]] | None = None,
        outbox_epoch: str = "0",
        client: AnyRedis | None = None,
        now_ms: Callable[[], int] = wall_ms,
        cursor: str = REDIS_CURSOR,
    ) -> None:
        super().__init__(
            outbox,
            cursor=cursor,
            batch_size=sync.batch_size,
            retry_max_ms=sync.retry_max,
            signal=signal,
            idle_wakeup_s=sync.heartbeat_interval / 1000,
            now_ms=now_ms,
            logger=_log,
        )
        self._gw = gateway_id
        self._cfg = redis
        self._sync_cfg = sync
        self._heartbeat_extra = heartbeat
        self._epoch = outbox_epoch
        self._client = client
        self._own_client = client is None
        self._writer: RedisWriter | None = None
        self._next_heartbeat = 0.0
        self._stream: ChunkStream | None = None
        self._retired_applied = 0
        self._retired_skipped = 0
        self._retired_high_water = 0

    def describe(self) -> str:
        return f"redis sync to {redacted_url(self._cfg.url)}"

    @property
    def writer(self) -> RedisWriter:
        if self._writer is None:
            raise RuntimeError("RedisSync has no writer before `async with` opened it")
        return self._writer

    async def on_open(self) -> None:
        if self._client is None:
            self._client = connect_redis(self._cfg, client_name=f"edge-gateway:{self._gw}")
        password = self._cfg.password_value()
        self._writer = RedisWriter(
            self._client,
            self._gw,
            target=redacted_url(self._cfg.url),
            windows_maxlen=self._sync_cfg.windows_maxlen,
            outbox_epoch=self._epoch,
            secrets=(password,) if password else (),
        )

    async def on_close(self) -> None:
        if self._writer is not None and self.connected:
            # Best effort: tell the operator this gateway stopped on purpose.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._writer.heartbeat(self._heartbeat_doc("stopped"))
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None
        if self._own_client and self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    async def deliver(self, entries: Sequence[OutboxEntryLike]) -> int:
        # One script call per batch; the next batch is built while Redis runs this one.
        if self._stream is None:
            self._stream = ChunkStream(self.writer, self._sync_cfg.batch_size)
        try:
            return await self._stream.submit(entries)
        except SyncError:
            self._retire_stream()
            raise

    async def flush(self) -> int:
        if self._stream is None:
            return 0
        try:
            return await self._stream.flush()
        except SyncError:
            self._retire_stream()
            raise

    def confirmed_so_far(self) -> int:
        return self._stream.confirmed if self._stream is not None else 0

    def _retire_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            self._retired_applied += stream.applied
            self._retired_skipped += stream.skipped
            self._retired_high_water = max(self._retired_high_water, stream.high_water)

    @property
    def applied(self) -> int:
        """Entries written to Redis."""
        return self._retired_applied + (self._stream.applied if self._stream else 0)

    @property
    def skipped(self) -> int:
        """Entries Redis already had (resends after a crash or a timeout)."""
        return self._retired_skipped + (self._stream.skipped if self._stream else 0)

    @property
    def high_water(self) -> int:
        """Last outbox id Redis confirmed."""
        current = self._stream.high_water if self._stream else 0
        return max(self._retired_high_water, current)

    async def on_tick(self) -> None:
        if time.monotonic() >= self._next_heartbeat:
            await self.send_heartbeat()

    def next_tick_s(self) -> float:
        return max(0.01, self._next_heartbeat - time.monotonic())

    async def send_heartbeat(self) -> None:
        """Write the heartbeat now (also done every ``heartbeat_interval`` by :meth:`run`)."""
        await self._refresh_stats(force=True)
        await self.writer.heartbeat(self._heartbeat_doc("online"))
        self._next_heartbeat = time.monotonic() + self._sync_cfg.heartbeat_interval / 1000

    def _heartbeat_doc(self, state: str) -> dict[str, object]:
        doc: dict[str, object] = {}
        if self._heartbeat_extra is not None:
            doc.update(self._heartbeat_extra())
        doc.update(
            gateway_id=self._gw,
            state=state,
            ts=self._now_ms(),
            outbox={**self.outbox_status(), "drain_per_s": self.drain_per_s()},
        )
        return doc

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "applied": self.applied,
            "skipped": self.skipped,
            "high_water": self.high_water,
        }
