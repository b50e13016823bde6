"""The gateway store in memory: the same API and rules as the SQLite store, nothing durable.

For development, tests and gateways whose state may be lost on restart. Snapshots are kept as
serialised JSON, so what comes back is what a durable store would return (tuples as lists,
copies rather than the caller's objects).
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.state._store import (
    GatewayStore,
    NowMs,
    dump_snapshot,
    entry_size,
    load_snapshot,
    new_epoch,
)
from gateway.state._types import Checkpoint, JournalEntry, OutboxEntry, OutboxStats

__all__ = ["MemoryGatewayStore"]

QUOTA_LOW_WATER = 0.95


@dataclass(slots=True)
class _Row:
    entry: OutboxEntry
    size: int
    journal_seq: int


class MemoryGatewayStore(GatewayStore):
    """:class:`GatewayStore` in process memory (lost on exit)."""

    def __init__(
        self,
        *,
        keep_checkpoints: int = 3,
        max_outbox_bytes: int = 256 * 1024 * 1024,
        now_ms: NowMs,
    ) -> None:
        super().__init__(
            keep_checkpoints=keep_checkpoints, max_outbox_bytes=max_outbox_bytes, now_ms=now_ms
        )
        self._next_seq = 1
        # (seq, entry as given): the entry gets its seq only when replayed, because copying
        # an entry per reading on the hot path cost ~10% of the memory gateway's rate.
        self._journal: list[tuple[int, JournalEntry]] = []
        # (id, journal_seq, created_at) of the kept checkpoints; the newest one's snapshots.
        self._checkpoints: list[tuple[int, int, int]] = []
        self._snapshots: dict[str, bytes] = {}
        self._checkpoint_id = 0
        self._parked: dict[str, bytes] = {}
        self._outbox: dict[int, _Row] = {}  # insertion order is id order
        # Ids in order, for reads and acks that start in the middle: ids of removed rows stay
        # until compacted (when they are the majority), and ``_head`` skips the acknowledged
        # prefix, so an ack or a read costs what it touches, never a copy of the whole outbox.
        self._ids: list[int] = []
        self._head = 0
        self._keys: dict[str, int] = {}  # dedupe key -> id of a pending row
        self._done: dict[str, int] = {}  # dedupe key -> journal seq, delivered or dropped
        self._outbox_id = 0
        self._bytes = 0
        self._dropped = {"dropped_windows": 0, "dropped_alerts": 0}
        # Nothing survives this object, so ids start at 1 again in the next one: a new epoch.
        self._epoch = new_epoch()

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    @property
    def next_seq(self) -> int:
        return self._next_seq

    async def commit_batch(
        self, journal: Sequence[JournalEntry], outbox: Sequence[OutboxEntry]
    ) -> None:
        self._check_open()
        first = self._next_seq
        last = first + len(journal) - 1
        self._journal.extend(zip(range(first, last + 1), journal, strict=True))
        self._next_seq = last + 1
        for entry in outbox:
            key = entry.dedupe_key
            if key in self._keys or key in self._done:
                continue
            self._outbox_id += 1
            row = _Row(entry._replace(id=self._outbox_id), entry_size(entry), last)
            self._outbox[self._outbox_id] = row
            self._ids.append(self._outbox_id)
            self._keys[key] = self._outbox_id
            self._bytes += row.size
        if self._bytes > self.max_outbox_bytes:
            self._enforce_quota()

    def _enforce_quota(self) -> None:
        target = int(self.max_outbox_bytes * QUOTA_LOW_WATER)
        try:
            for alerts, counter in ((False, "dropped_windows"), (True, "dropped_alerts")):
                for index in range(self._head, len(self._ids)):
                    if self._bytes <= target:
                        return
                    row = self._outbox.get(self._ids[index])
                    if row is not None and (row.entry.kind == "alert") is alerts:
                        self._drop(row.entry.id)
                        self._dropped[counter] += 1
        finally:
            self._compact()

    def _compact(self) -> None:
        """Forget the ids of removed rows once they are the majority (amortised O(1))."""
        if len(self._ids) - len(self._outbox) > max(1024, len(self._outbox)):
            self._ids = [row_id for row_id in self._ids[self._head :] if row_id in self._outbox]
            self._head = 0

    def _drop(self, row_id: int) -> None:
        row = self._outbox.pop(row_id)
        del self._keys[row.entry.dedupe_key]
        self._done[row.entry.dedupe_key] = row.journal_seq
        self._bytes -= row.size

    async def replay_journal(self, after_seq: int) -> AsyncIterator[JournalEntry]:
        self._check_open()
        for seq, entry in list(self._journal):
            if seq > after_seq:
                yield entry._replace(seq=seq)

    async def write_checkpoint(
        self, changed: Mapping[str, Any], journal_seq: int, *, removed: Collection[str] = ()
    ) -> int:
        self._check_checkpoint(changed, journal_seq, removed)
        encoded = {key: dump_snapshot(key, snap) for key, snap in changed.items()}
        self._snapshots.update(encoded)
        for key in removed:
            self._snapshots.pop(key, None)
        self._checkpoint_id += 1
        self._checkpoints.append((self._checkpoint_id, journal_seq, self._now_ms()))
        del self._checkpoints[: -self.keep_checkpoints]
        self._journal = [pair for pair in self._journal if pair[0] > journal_seq]
        self._done = {k: s for k, s in self._done.items() if s > journal_seq}
        return self._checkpoint_id

    async def load_checkpoint(self) -> Checkpoint | None:
        self._check_open()
        if not self._checkpoints:
            return None
        checkpoint_id, journal_seq, created_at = self._checkpoints[-1]
        snapshots = {key: load_snapshot(data) for key, data in self._snapshots.items()}
        return Checkpoint(checkpoint_id, journal_seq, snapshots, created_at)

    async def load_checkpointed(self, key: str) -> Any | None:
        self._check_open()
        data = self._snapshots.get(key)
        return None if data is None else load_snapshot(data)

    async def put_snapshot(self, key: str, snapshot: Any) -> None:
        self._check_open()
        self._parked[key] = dump_snapshot(key, snapshot)

    async def get_snapshot(self, key: str) -> Any | None:
        self._check_open()
        data = self._parked.get(key)
        return None if data is None else load_snapshot(data)

    async def delete_snapshot(self, key: str) -> None:
        self._check_open()
        self._parked.pop(key, None)

    async def outbox_read(self, cursor: str, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        position = max(self._check_cursor(cursor), after)
        out: list[OutboxEntry] = []
        ids, rows = self._ids, self._outbox
        index = bisect.bisect_right(ids, position, lo=self._head)
        while len(out) < limit and index < len(ids):
            row = rows.get(ids[index])
            if row is not None:
                out.append(row.entry)
            index += 1
        return out

    async def outbox_ack(self, cursor: str, upto_id: int) -> None:
        position = self._check_cursor(cursor)
        if upto_id <= position:
            return
        self._cursors[cursor] = min(upto_id, self._outbox_id)
        floor = self._floor()
        assert floor is not None
        ids, index = self._ids, self._head
        while index < len(ids) and ids[index] <= floor:
            if ids[index] in self._outbox:
                self._drop(ids[index])
            index += 1
        self._head = index
        self._compact()

    async def outbox_stats(self) -> OutboxStats:
        self._check_open()
        first = next(iter(self._outbox.values()), None)
        return OutboxStats(
            rows=len(self._outbox),
            bytes=self._bytes,
            oldest_created_at=None if first is None else first.entry.created_at,
            dropped_windows=self._dropped["dropped_windows"],
            dropped_alerts=self._dropped["dropped_alerts"],
        )
