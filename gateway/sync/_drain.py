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
        self._acked = 0  # the last id acknowledged to the store
        self._confirmed = 0  # the last id the sink confirmed
        self._read_upto = 0  # the last id read (0: read from the cursor)
        self._prefetch: asyncio.Task[Sequence[OutboxEntryLike]] | None = None
        self._ack_task: asyncio.Task[None] | None = None
        self._blocks: collections.deque[Sequence[OutboxEntryLike]] = collections.deque()
        self._block_offset = 0  # entries of _blocks[0] already counted as delivered
        self.read_ahead = max(batch_size, min(10 * batch_size, 10_000))
        """Entries read at once (the next block is read while one is delivered); delivered
        ``batch_size`` at a time."""
        self.ack_every = self.read_ahead
        """While a backlog drains, the cursor is acknowledged once this many more entries
        are confirmed (one transaction and fsync for that many); whatever is confirmed is
        acknowledged anyway when the outbox is drained, the sink fails or the loop stops."""
        self._ack_all = False  # acknowledge everything confirmed, however little

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
        with contextlib.suppress(StateError):
            self._raise_ack_error()  # an earlier failure: this is a new attempt
        await self._ack_confirmed()  # a failure: the next start reads from the cursor anyway
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
        current = asyncio.current_task()
        assert current is not None
        while True:
            if current.cancelling():
                # A cancel swallowed on the way (a library that turned it into an error, or
                # Python 3.11's timeout() taking it for its own when both coincide) must
                # still stop the loop, or a stop would wait for it forever.
                raise asyncio.CancelledError
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
        """Deliver the next block of up to :attr:`read_ahead` entries, ``batch_size`` at a
        time; the number of entries handed to the sink (0: nothing new, and everything the
        sink confirmed is acknowledged).

        A backlog flows through a pipeline: while one block is delivered the next one is
        already being read (the store works in its own thread), and what the sink confirmed
        is acknowledged in the background, one acknowledgement at a time and in order
        (acknowledging is the store's fsync'ed step). Nothing waits for an acknowledgement
        until the backlog is done, the sink fails or the loop is cancelled. A crash in between
        only makes the sink see a resend, which it skips (Redis: the high-water mark) or
        tolerates (forwarders are at-least-once).
        """
        self._raise_ack_error()
        entries = await self._next_block()
        if not entries:
            try:
                self._confirm(await self.flush())
                self._sink.succeeded()
            except SyncError as exc:
                self._confirm(exc.done_upto)
                await self._abandon()
                raise
            await self._settle_acks()
            return 0
        self._read_upto = entries[-1].id
        if len(entries) >= self.read_ahead:  # a backlog: read the next block meanwhile
            self._prefetch = asyncio.create_task(
                self._read(self._read_upto), name=f"{self.task_name}.read"
            )
        self._blocks.append(entries)
        try:
            for start in range(0, len(entries), self._batch_size):
                self._confirm(await self.deliver(entries[start : start + self._batch_size]))
                await asyncio.sleep(0)  # let live processing run between batches
        except SyncError as exc:
            self._confirm(exc.done_upto)
            await self._abandon()
            raise
        except BaseException:
            self._confirm(self.confirmed_so_far())
            await self._abandon()  # cancelled: acknowledge what the sink confirmed, then go
            raise
        return len(entries)

    async def flush(self) -> int:
        """Wait for deliveries still in flight; the last id confirmed (0: nothing pending)."""
        return 0

    def confirmed_so_far(self) -> int:
        """The last id the sink confirmed, without waiting (0: the sink does not know).

        Read when the loop is cancelled in the middle of :meth:`deliver`, whose return
        value is then lost: without it the acknowledgement on stop would lag behind what
        the sink already has.
        """
        return 0

    # -- the pipeline's parts -------------------------------------------------------------

    async def _read(self, after: int) -> Sequence[OutboxEntryLike]:
        return await self._outbox.outbox_read(self.cursor, self.read_ahead, after=after)

    async def _next_block(self) -> Sequence[OutboxEntryLike]:
        task, self._prefetch = self._prefetch, None
        entries = await (task if task is not None else self._read(self._read_upto))
        self._store.succeeded()
        return entries

    def _confirm(self, upto: int) -> None:
        """The sink confirmed every entry up to ``upto``: acknowledge it in the background
        (once :attr:`ack_every` entries are waiting, see :meth:`_ack_due`)."""
        if upto <= self._confirmed:
            return
        self._confirmed = upto
        self._raise_ack_error()
        self._start_ack()

    def _start_ack(self) -> None:
        if self._ack_task is None and self._ack_due():
            self._ack_task = asyncio.create_task(self._ack_loop(), name=f"{self.task_name}.ack")

    def _ack_due(self) -> bool:
        pending = self._confirmed - self._acked  # ids: about the number of entries
        return pending > 0 and (self._ack_all or pending >= self.ack_every)

    def _raise_ack_error(self) -> None:
        task = self._ack_task
        if task is not None and task.done():
            self._ack_task = None
            task.result()  # a store error surfaces here (and the next confirm retries)

    async def _ack_loop(self) -> None:
        """Acknowledge up to the newest confirmed id, one acknowledgement at a time, until
        caught up (confirmations arriving meanwhile are folded into the next one)."""
        while self._ack_due():
            upto = self._confirmed
            await self._outbox.outbox_ack(self.cursor, upto)
            done = self._count_acked(upto)
            self._acked = upto
            self.delivered += done
            self._rate.append((time.monotonic(), done))
            self._dirty = True
            await self._refresh_stats()
        self._ack_task = None

    def _count_acked(self, upto: int) -> int:
        """Entries of the delivered blocks with ids up to ``upto`` not yet counted."""
        done = 0
        blocks = self._blocks
        while blocks:
            block = blocks[0]
            if block[-1].id <= upto:
                done += len(block) - self._block_offset
                blocks.popleft()
                self._block_offset = 0
                continue
            index = bisect.bisect_right(block, upto, lo=self._block_offset, key=_entry_id)
            done += index - self._block_offset
            self._block_offset = index
            break
        return done

    async def _settle_acks(self) -> None:
        """Wait until everything confirmed is acknowledged (a store error is raised)."""
        self._ack_all = True
        try:
            while True:
                self._start_ack()
                task = self._ack_task
                if task is not None:
                    await asyncio.wait([task])
                self._raise_ack_error()
                if self._confirmed <= self._acked:
                    return
                # else the last attempt failed before: try once more
        finally:
            self._ack_all = False

    async def _ack_confirmed(self) -> None:
        """Acknowledge everything the sink confirmed, however little, and wait for it; a
        store failure is left to the next attempt (the run loop's, or the next start's)."""
        self._ack_all = True
        try:
            self._start_ack()
            ack = self._ack_task
            if ack is not None:
                await asyncio.wait([ack])
                if not ack.cancelled() and ack.exception() is not None:
                    self._ack_task = None
        finally:
            self._ack_all = False

    async def _abandon(self) -> None:
        """After a sink failure (or on cancellation): drop the block read ahead, acknowledge
        what the sink confirmed, and read from the cursor again next time."""
        task, self._prefetch = self._prefetch, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: the block is read again anyway
        self._read_upto = 0
        await self._ack_confirmed()  # a failure is not the news: the run loop retries
        self._blocks.clear()
        self._block_offset = 0

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
