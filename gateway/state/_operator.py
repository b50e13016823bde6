"""The operator's state: dict-speed reads and writes, asynchronous batched persistence.

:class:`StatefulOperator` keeps its working state in a plain ``dict``. ``put``, ``get``,
``update`` and ``delete`` are synchronous and touch only that dict (plus a dict of pending
changes): no I/O, no await. A background task named ``state[<name>].flush`` hands the pending
changes to the :class:`~gateway.state.StateBackend` as one batch every ``flush_interval`` ms
(sooner once ``max_pending`` changes wait); ``flush()`` does it on demand and returns when the
batch is durable. ``checkpoint(name)`` flushes and stores a complete copy; ``restore(id)``
replaces the working and the persisted state by a checkpoint's.

What survives a crash: everything up to the last completed flush or checkpoint, never part
of a batch. Values are JSON (``float('nan')`` and infinities included); treat them as
immutable: a value changed in place is persisted only when it is ``put`` again.

TTL: ``put(key, value, ttl=ms)``; an expired key is never returned (``get`` checks the expiry,
the flush task sweeps expired keys every ``sweep_interval`` ms, and the backend expires its
copy: PEXPIRE on Redis, an expiry column swept on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable, Iterator
from typing import Any

from gateway.state._backend import CheckpointInfo, Entry, StateBackend
from gateway.state._errors import StateError, StateUsageError
from gateway.state._lifecycle import Lifecycle
from gateway.state._store import NowMs, dump_snapshot, load_snapshot, wall_clock_ms

__all__ = ["StatefulOperator"]

log = logging.getLogger("gateway.state")

_DELETED = object()


class StatefulOperator(Lifecycle):
    """Keyed state of one operator (e.g. one actor kind), persisted in the background.

    Args:
        backend: an open :class:`StateBackend`.
        name: the operator's namespace in the backend.
        flush_interval: ms between background flushes.
        sweep_interval: ms between sweeps of expired keys.
        max_pending: pending changes that trigger a flush before the interval is up.
        now_ms: clock (epoch ms), injectable for tests.
    """

    def __init__(
        self,
        backend: StateBackend,
        name: str,
        *,
        flush_interval: int = 50,
        sweep_interval: int = 1_000,
        max_pending: int = 50_000,
        now_ms: NowMs = wall_clock_ms,
    ) -> None:
        if not name:
            raise StateUsageError("a StatefulOperator needs a non-empty name")
        self.backend = backend
        self.name = name
        self.flush_interval = flush_interval
        self.sweep_interval = sweep_interval
        self.max_pending = max_pending
        self._now_ms = now_ms
        self._data: dict[str, Any] = {}
        self._expiry: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._pending: dict[str, object] = {}
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failure: StateError | None = None
        self.flushed_batches = 0
        self.refused_values = 0
        """Values dropped from persistence because they could not be serialised."""

    # -- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        if not self.backend.is_open:
            msg = f"operator {self.name!r}: open its backend (async with) before the operator"
            raise StateUsageError(msg)
        now = self._now_ms()
        self._install(await self.backend.load(self.name, now))
        self._task = asyncio.create_task(self._run(), name=f"state[{self.name}].flush")

    async def _close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are being cancelled ourselves: never swallow that
        await self._flush()

    # -- the hot path: dict operations -----------------------------------------------------

    def get(self, key: str) -> Any:
        """The value of ``key``, or ``None`` when absent or expired."""
        value = self._data.get(key)
        if value is not None and self._expiry:
            expires = self._expiry.get(key)
            if expires is not None and expires <= self._now_ms():
                self._expire(key)
                return None
        return value

    def put(self, key: str, value: Any, ttl: int | None = None) -> None:
        """Set ``key`` (``value`` must not be ``None``); ``ttl`` in ms makes it expire."""
        if value is None:
            msg = f"operator {self.name!r}: put({key!r}, None): use delete() to remove a key"
            raise StateUsageError(msg)
        self._data[key] = value
        if ttl is not None:
            expires = self._now_ms() + ttl
            self._expiry[key] = expires
            heapq.heappush(self._heap, (expires, key))
        elif self._expiry:
            self._expiry.pop(key, None)
        self._pending[key] = value
        if len(self._pending) >= self.max_pending:
            self._wake.set()

    def update(self, key: str, fn: Callable[[Any], Any]) -> Any:
        """Set ``key`` to ``fn(current value or None)``, keeping its expiry; ``None`` deletes.
        Returns the new value."""
        new = fn(self.get(key))
        if new is None:
            self.delete(key)
            return None
        self._data[key] = new
        self._pending[key] = new
        if len(self._pending) >= self.max_pending:
            self._wake.set()
        return new

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""
        if self._data.pop(key, None) is not None:
            self._expiry.pop(key, None)
            self._pending[key] = _DELETED

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def keys(self) -> Iterator[str]:
        """The keys that have not expired."""
        now = self._now_ms()
        return iter([k for k in self._data if self._expiry.get(k, now + 1) > now])

    @property
    def pending(self) -> int:
        """Changes not yet handed to the backend."""
        return len(self._pending)

    def _expire(self, key: str) -> None:
        # The backend expires its own copy; nothing to write.
        self._data.pop(key, None)
        self._expiry.pop(key, None)
        self._pending.pop(key, None)

    def _sweep_memory(self, now: int) -> int:
        swept = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            if self._expiry.get(key) == expires:
                self._expire(key)
                swept += 1
        return swept

    # -- persistence -----------------------------------------------------------------------

    async def flush(self) -> int:
        """Hand every pending change to the backend as one batch; durable on return.
        Returns the number of changes written."""
        self._check_open()
        return await self._flush()

    async def _flush(self) -> int:
        async with self._flush_lock:
            if not self._pending:
                return 0
            batch, self._pending = self._pending, {}
            now = self._now_ms()
            upserts: dict[str, Entry] = {}
            deletes: list[str] = []
            refused: list[str] = []
            for key, value in batch.items():
                if value is _DELETED:
                    deletes.append(key)
                    continue
                try:
                    upserts[key] = (dump_snapshot(key, value), self._expiry.get(key))
                except StateUsageError:
                    refused.append(key)  # not retried: it would poison every later batch
            try:
                await self.backend.write_batch(self.name, upserts, deletes, now)
            except BaseException:
                # Put the batch back under anything written meanwhile, for the next attempt.
                for key in refused:
                    del batch[key]
                batch.update(self._pending)
                self._pending = batch
                raise
            self.flushed_batches += 1
            if refused:
                self.refused_values += len(refused)
                shown = ", ".join(repr(k) for k in refused[:5])
                msg = (
                    f"operator {self.name!r}: {len(refused)} value(s) are not JSON-serialisable "
                    f"and were not persisted (keys {shown}); they stay in memory only"
                )
                raise StateUsageError(msg)
            return len(upserts) + len(deletes)

    async def _run(self) -> None:
        interval = self.flush_interval / 1000
        next_sweep = self._now_ms() + self.sweep_interval
        failing = False
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event fires, and close() would then wait for a whole interval.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            now = self._now_ms()
            try:
                if now >= next_sweep:
                    next_sweep = now + self.sweep_interval
                    self._sweep_memory(now)
                    await self.backend.sweep(self.name, now)
                await self._flush()
            except StateError as exc:
                if not failing:  # log once per transition
                    log.error("state[%s]: persisting failed, will retry: %s", self.name, exc)
                failing = True
                self._failure = exc
                await asyncio.sleep(min(1.0, interval * 10))
            else:
                if failing:
                    log.info("state[%s]: persisting works again", self.name)
                failing = False
                self._failure = None

    @property
    def last_error(self) -> StateError | None:
        """The error of the last failed background flush, ``None`` once one succeeds."""
        return self._failure

    # -- checkpoints -----------------------------------------------------------------------

    async def checkpoint(self, name: str) -> int:
        """Flush, then store the whole state as checkpoint ``name``; returns its id."""
        self._check_open()
        await self._flush()
        now = self._now_ms()
        self._sweep_memory(now)
        entries = {
            key: (dump_snapshot(key, value), self._expiry.get(key))
            for key, value in self._data.items()
        }
        return await self.backend.checkpoint(self.name, name, entries, now)

    async def restore(self, checkpoint_id: int) -> None:
        """Replace the working and the persisted state by checkpoint ``checkpoint_id``'s;
        changes not yet flushed are discarded.

        Raises:
            StateUsageError: no such checkpoint for this operator.
        """
        self._check_open()
        async with self._flush_lock:
            entries = await self.backend.restore(self.name, checkpoint_id, self._now_ms())
            self._pending = {}
            self._install(entries)

    async def list_checkpoints(self) -> list[CheckpointInfo]:
        """This operator's checkpoints, oldest first."""
        self._check_open()
        return await self.backend.list_checkpoints(self.name)

    def _install(self, entries: dict[str, Entry]) -> None:
        self._data = {key: load_snapshot(data) for key, (data, _) in entries.items()}
        self._expiry = {key: exp for key, (_, exp) in entries.items() if exp is not None}
        self._heap = [(exp, key) for key, exp in self._expiry.items()]
        heapq.heapify(self._heap)
