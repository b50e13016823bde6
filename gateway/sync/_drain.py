"""The drain loop every sink shares: read a batch after the cursor, deliver, acknowledge.

One loop per sink (Redis, upstream MQTT, webhook), each with its own outbox cursor, so a dead
sink only holds back itself. A batch is acknowledged only after the sink confirmed it; while
the sink fails the loop backs off with jitter (capped), logs the outage once and the recovery
once, and keeps going. A backlog drains batch after batch with a yield to the event loop in
between, so live processing is never starved.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

from gateway.state import StateError
from gateway.sync._backoff import Backoff, Transitions
from gateway.sync._errors import SyncError
from gateway.sync._outbox import Outbox, OutboxEntryLike, OutboxSignal, OutboxStatsLike

__all__ = ["DrainLoop", "wall_ms"]

FIRST_RETRY_S = 0.2
"""First backoff delay after a failure (doubles up to ``retry_max``)."""
STATS_EVERY_S = 1.0
"""Outbox statistics are refreshed at most this often."""
RATE_WINDOW_S = 10.0
"""The drain rate is averaged over this many seconds."""


def _entry_id(entry: OutboxEntryLike) -> int:
    return entry.id


def wall_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return time.time_ns() // 1_000_000


class DrainLoop:
    """Base of the sinks. Subclasses implement :meth:`deliver` (and may override hooks).

    Lifecycle: ``async with sink:`` opens it (registers the cursor, builds clients),
    :meth:`start` runs :meth:`run` as a named task in the owner's TaskGroup, leaving the
    ``async with`` cancels that task and closes the clients. Not reentrant, not reusable.
    """

    sink_name = "sink"
    """Short name in task names and logs (``redis``, ``forward.mqtt``, ...)."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        cursor: str,
        batch_size: int,
        retry_max_ms: int,
        signal: OutboxSignal | asyncio.Event | None = None,
        idle_wakeup_s: float = 5.0,
        now_ms: Callable[[], int] = wall_ms,
        logger: logging.Logger | None = None,
    ) -> None:
        self._outbox = outbox
        self.cursor = cursor
        self._batch_size = batch_size
        self._backoff = Backoff(FIRST_RETRY_S, max(FIRST_RETRY_S, retry_max_ms / 1000))
        self._signal = signal
        self._wake: asyncio.Event | None = signal if isinstance(signal, asyncio.Event) else None
        self._idle_wakeup_s = idle_wakeup_s
        self._now_ms = now_ms
        self._log = logger or logging.getLogger(f"gateway.sync.{self.sink_name}")
        self._sink = Transitions(self._log, self.sink_name)  # named by describe() at open
        self._store = Transitions(self._log, f"{self.sink_name}: reading the outbox")
        self._stats: OutboxStatsLike | None = None
        self._stats_at = 0.0
        self._dirty = True
        self._rate: collections.deque[tuple[float, int]] = collections.deque()
        self._state = "new"
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        """Entries this sink confirmed since start."""
        self._acked = 0
        self.read_ahead = max(batch_size, min(10 * batch_size, 10_000))
        """Entries read (and acknowledged) at once; delivered ``batch_size`` at a time."""

    # -- what a sink provides -------------------------------------------------------------

    def describe(self) -> str:
        """How logs name the sink (no secrets)."""
        return self.sink_name

    async def deliver(self, entries: Sequence[OutboxEntryLike]) -> int:
        """Deliver ``entries``; return the last id the sink confirmed so far (it may lag
        behind ``entries`` while deliveries are in flight: see :meth:`flush`).

        Raises:
            SyncError: the sink did not take the batch (``done_upto``: what it did take); the
                rest is retried after a backoff.
        """
        raise NotImplementedError

    async def on_open(self) -> None:
        """Build clients (no I/O needed)."""

    async def on_close(self) -> None:
        """Close clients."""

    async def on_tick(self) -> None:
        """Called on every loop turn (heartbeats); may raise :class:`SyncError`."""

    def next_tick_s(self) -> float:
        """Longest the idle loop may sleep before :meth:`on_tick` is due."""
        return self._idle_wakeup_s

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def task_name(self) -> str:
        return f"gateway[sync].{self.sink_name}"

    async def __aenter__(self) -> Self:
        if self._state != "new":
            msg = f"{type(self).__name__} is not reusable: create a new one for each `async with`"
            raise RuntimeError(msg)
        self._state = "open"
        self._sink.what = self.describe()
        self._outbox.register_cursor(self.cursor)
        if isinstance(self._signal, OutboxSignal):
            self._wake = self._signal.subscribe()
        await self.on_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._state = "closed"
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if isinstance(self._signal, OutboxSignal) and self._wake is not None:
            self._signal.unsubscribe(self._wake)
        await self.on_close()

    def start(self, task_group: asyncio.TaskGroup) -> asyncio.Task[None]:
        """Run :meth:`run` as a task named :attr:`task_name` in the owner's TaskGroup."""
        if self._state != "open":
            msg = f"start {type(self).__name__} inside its `async with` block"
            raise RuntimeError(msg)
        if self._task is not None:
            msg = f"{self.task_name} is already running"
            raise RuntimeError(msg)
        self._task = task_group.create_task(self.run(), name=self.task_name)
        return self._task

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Drain forever (until cancelled)."""
        if self._state != "open":
            msg = f"run {type(self).__name__} inside its `async with` block"
            raise RuntimeError(msg)
        if self._wake is None:
            self._wake = asyncio.Event()
        wake = self._wake
        while True:
            wake.clear()  # before reading: a commit after this point wakes the next wait
            try:
                await self.on_tick()
                worked = await self.drain_once()
            except SyncError as exc:
                self._sink.failed(exc, await self._backlog_rows())
                await asyncio.sleep(self._backoff.next_delay())
                continue
            except StateError as exc:
                self._store.failed(exc, 0)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._sink.succeeded()
            self._backoff.reset()
            if worked:
                await asyncio.sleep(0)  # let live processing run between batches
                continue
            await self._refresh_stats(force=self._dirty)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.next_tick_s()):
                    await wake.wait()

    async def drain_once(self) -> int:
        """Read up to :attr:`read_ahead` entries, deliver them ``batch_size`` at a time and
        acknowledge what the sink confirmed; the number of entries done (0: idle).

        Acknowledging is the store's expensive (fsync'ed) step, so it runs in the background
        while the next batches are delivered, one acknowledgement at a time, in order. A crash
        in between only makes the sink see a resend, which it skips (Redis: the high-water
        mark) or tolerates (forwarders are at-least-once).
        """
        entries = await self._outbox.outbox_read(self.cursor, self.read_ahead)
        self._store.succeeded()
        if not entries:
            return 0
        upto = 0
        acking: asyncio.Task[object] | None = None
        try:
            for start in range(0, len(entries), self._batch_size):
                batch = entries[start : start + self._batch_size]
                try:
                    upto = max(upto, await self.deliver(batch))
                except SyncError as exc:
                    upto = max(upto, exc.done_upto)
                    raise
                if upto > self._acked and (acking is None or acking.done()):
                    if acking is not None:
                        acking.result()  # a store error surfaces here
                    acking = asyncio.create_task(
                        self._acknowledge(entries, upto), name=f"{self.task_name}.ack"
                    )
                await asyncio.sleep(0)  # let live processing run between batches
            try:
                upto = max(upto, await self.flush())
            except SyncError as exc:
                upto = max(upto, exc.done_upto)
                raise
            self._sink.succeeded()
        finally:
            if acking is not None:
                await asyncio.wait([acking])
                acking.result()
            await self._acknowledge(entries, upto)
        return len(entries)

    async def flush(self) -> int:
        """Wait for deliveries still in flight; the last id confirmed (0: nothing pending)."""
        return 0

    async def _acknowledge(self, entries: Sequence[OutboxEntryLike], upto: int) -> int:
        if upto <= self._acked:
            return 0
        await self._outbox.outbox_ack(self.cursor, upto)
        done = bisect.bisect_right(entries, upto, key=_entry_id) - bisect.bisect_right(
            entries, self._acked, key=_entry_id
        )
        self._acked = max(self._acked, upto)
        self.delivered += done
        self._rate.append((time.monotonic(), done))
        self._dirty = True
        await self._refresh_stats()
        return done

    # -- status ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The last attempt to reach the sink succeeded."""
        return self._sink.up is True

    @property
    def last_error(self) -> str | None:
        """The last failure (one line, no secrets)."""
        return self._sink.last_error

    def drain_per_s(self) -> float:
        now = time.monotonic()
        while self._rate and self._rate[0][0] < now - RATE_WINDOW_S:
            self._rate.popleft()
        if not self._rate:
            return 0.0
        span = max(1.0, now - self._rate[0][0])
        return round(sum(n for _, n in self._rate) / span, 1)

    def outbox_status(self) -> dict[str, Any]:
        """Backlog figures of the last statistics read."""
        stats = self._stats
        if stats is None:
            return {"backlog_rows": 0, "backlog_bytes": 0, "oldest_age_s": None, "dropped": 0}
        oldest = stats.oldest_created_at
        age = None if oldest is None else round(max(0, self._now_ms() - oldest) / 1000, 1)
        return {
            "backlog_rows": stats.rows,
            "backlog_bytes": stats.bytes,
            "oldest_age_s": age,
            "dropped": stats.dropped_windows + stats.dropped_alerts,
        }

    def status(self) -> dict[str, Any]:
        """``{configured, connected, backlog_rows, backlog_bytes, oldest_age_s, drain_per_s,
        last_error, delivered, dropped}`` for the status message."""
        return {
            "configured": True,
            "connected": self.connected,
            **self.outbox_status(),
            "drain_per_s": self.drain_per_s(),
            "last_error": self.last_error,
            "delivered": self.delivered,
        }

    async def _refresh_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._stats_at < STATS_EVERY_S:
            return
        self._stats_at = now
        self._dirty = False
        try:
            self._stats = await self._outbox.outbox_stats()
        except StateError as exc:
            self._store.failed(exc, 0)

    async def _backlog_rows(self) -> int:
        await self._refresh_stats()
        return 0 if self._stats is None else self._stats.rows
