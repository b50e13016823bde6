"""The gateway store in one SQLite file (WAL, synchronous=FULL; see ``_sqlite_file``).

Every write is one transaction run by :meth:`SqliteGatewayStore._transaction`: a lock keeps
tasks from interleaving statements on the one connection, and the transaction runs in its own
task shielded from cancellation, so a cancelled caller never leaves the file and the in-memory
counters (``next_seq``, outbox bytes) disagreeing.

Checkpoints are incremental: ``checkpoint_rows`` holds one row per key per checkpoint that
changed it (``data`` NULL = the key went away); a checkpoint's state is, per key, the newest row
at or before it. Pruning keeps each key's newest row at or before the oldest kept checkpoint.
(``checkpoints.keys`` counts the rows a checkpoint wrote.) Nothing of a checkpoint is kept in
memory: ``write_checkpoint`` is given only the changes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from gateway.state._sqlite_file import (
    convert_runtime,
    open_database,
    run_shielded,
    sqlite_errors,
)
from gateway.state._store import (
    GatewayStore,
    NowMs,
    dump_snapshot,
    entry_size,
    load_snapshot,
    new_epoch,
)
from gateway.state._types import Checkpoint, JournalEntry, OutboxEntry, OutboxStats

__all__ = ["SqliteGatewayStore"]

T = TypeVar("T")

REPLAY_CHUNK = 2_000
PRUNE_SLICE = 4_096
"""Journal rows deleted per transaction once a checkpoint covers them (see write_checkpoint)."""
VACUUM_THRESHOLD_PAGES = 256
"""Free pages (1 MiB at 4 KiB pages) after which an ack gives disk space back."""
VACUUM_STEP_PAGES = 4_096
"""Pages released per incremental vacuum, so one never stalls the loop for long."""
RECLAIM_BACKLOG_ROWS = 10_000
"""Freed pages are given back only while at most this many rows wait (see ``_reclaim``)."""
QUOTA_LOW_WATER = 0.95
"""Past the quota, drop down to this fraction of it, so drops happen in bursts, not per batch."""

_INSERT_JOURNAL = "INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?, ?)"
# Dedupe by filtering, not by OR IGNORE: an ignored conflict still uses up an AUTOINCREMENT id,
# and the store relies on new rows taking consecutive ids (duplicates within a batch are
# removed before this statement).
_INSERT_OUTBOX = (
    "INSERT INTO outbox(kind, dedupe_key, payload, created_at, size, journal_seq) "
    "SELECT ?, ?, ?, ?, ?, ? "
    "WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE dedupe_key = ?) "
    "AND NOT EXISTS (SELECT 1 FROM outbox_done WHERE dedupe_key = ?)"
)


_READ_OUTBOX = (
    "SELECT id, kind, dedupe_key, payload, created_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?"
)
# A row (id, kind, dedupe_key, payload, created_at) is the entry's fields in their order and
# types (INTEGER, TEXT, TEXT, BLOB, INTEGER), so OutboxEntry._make takes it as it is.


_EPOCH_COUNTER = "outbox_epoch"
"""The file's epoch lives in ``counters`` (an integer: 0 for files from before epochs)."""


def _epoch_text(value: int) -> str:
    return f"{value:016x}" if value else "0"


_DROP_ORDER = (("kind != 'alert'", "dropped_windows"), ("kind = 'alert'", "dropped_alerts"))


@dataclass(slots=True)
class _BatchResult:
    next_seq: int
    max_id: int
    rows: int = 0
    bytes: int = 0
    dropped: dict[str, int] = field(
        default_factory=lambda: {"dropped_windows": 0, "dropped_alerts": 0}
    )


class SqliteGatewayStore(GatewayStore):
    """:class:`GatewayStore` in the SQLite file at ``path``."""

    def __init__(
        self,
        path: Path,
        *,
        keep_checkpoints: int = 3,
        max_outbox_bytes: int = 256 * 1024 * 1024,
        now_ms: NowMs,
    ) -> None:
        super().__init__(
            keep_checkpoints=keep_checkpoints, max_outbox_bytes=max_outbox_bytes, now_ms=now_ms
        )
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._next_seq = 1
        self._rows = 0
        self._bytes = 0
        self._max_id = 0
        self._counters = {"dropped_windows": 0, "dropped_alerts": 0}

    # -- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        self._db = db = await open_database(self.path)
        try:
            await self._load_bookkeeping(db)
        except BaseException:
            self._db = None
            await db.close()
            raise

    async def _load_bookkeeping(self, db: aiosqlite.Connection) -> None:
        with sqlite_errors(self.path):
            top = await db.execute_fetchall(
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM journal), 0),"
                " COALESCE((SELECT MAX(journal_seq) FROM checkpoints), 0),"
                " COALESCE((SELECT MAX(journal_seq) FROM outbox), 0),"
                " COALESCE((SELECT MAX(journal_seq) FROM outbox_done), 0))"
            )
            self._next_seq = int(next(iter(top))[0]) + 1
            stats = await db.execute_fetchall(
                "SELECT COUNT(*), COALESCE(SUM(size), 0),"
                " COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)"
                " FROM outbox"
            )
            self._rows, self._bytes, self._max_id = (int(v) for v in next(iter(stats)))
            for name, position in await db.execute_fetchall("SELECT name, position FROM cursors"):
                self._cursors[str(name)] = int(position)
            for name, value in await db.execute_fetchall("SELECT name, value FROM counters"):
                if name == _EPOCH_COUNTER:
                    self._epoch = _epoch_text(int(value))
                else:
                    self._counters[str(name)] = int(value)
            if self._epoch is None:
                self._epoch = await self._create_epoch(db)

    async def _create_epoch(self, db: aiosqlite.Connection) -> str:
        """Give the file its epoch, once: a new one for a new file, ``0`` for a file that was
        already used before epochs existed (its Redis mark is ``applied:0``)."""
        used = await db.execute_fetchall(
            "SELECT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name IN ('outbox', 'checkpoints'))"
            " OR EXISTS (SELECT 1 FROM journal) OR EXISTS (SELECT 1 FROM cursors)"
        )
        value = 0 if next(iter(used))[0] else int(new_epoch(), 16)
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(
                "INSERT OR IGNORE INTO counters(name, value) VALUES (?, ?)", (_EPOCH_COUNTER, value)
            )
            found = await db.execute_fetchall(
                "SELECT value FROM counters WHERE name = ?", (_EPOCH_COUNTER,)
            )
            await db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise
        return _epoch_text(int(next(iter(found))[0]))

    async def _close(self) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        async with self._lock:
            try:
                await db.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass  # only a planner hint; closing matters more
            finally:
                await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        self._check_open()
        assert self._db is not None
        return self._db

    async def _transaction(
        self,
        body: Callable[[aiosqlite.Connection], Awaitable[T]],
        after: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``body`` in one IMMEDIATE transaction, serialised and shielded from cancellation;
        ``after`` updates the in-memory view with its result once COMMIT has succeeded."""
        db = self._conn

        async def run() -> T:
            async with self._lock:
                try:
                    await db.execute("BEGIN IMMEDIATE")
                    try:
                        result = await body(db)
                        await db.execute("COMMIT")
                    except BaseException:
                        if db.in_transaction:
                            await db.execute("ROLLBACK")
                        raise
                except sqlite3.Error as exc:
                    raise convert_runtime(exc, self.path) from exc
                if after is not None:
                    after(result)
                return result

        return await run_shielded(run())

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        db = self._conn
        async with self._lock:
            with sqlite_errors(self.path):
                return list(await db.execute_fetchall(sql, params))

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

        # The first of several entries with one dedupe key wins, as with separate batches.
        first_of: dict[str, OutboxEntry] = {}
        for e in outbox:
            first_of.setdefault(e.dedupe_key, e)
        unique = list(first_of.values())

        async def body(db: aiosqlite.Connection) -> _BatchResult:
            first = self._next_seq
            last = first + len(journal) - 1
            if journal:
                await db.executemany(
                    _INSERT_JOURNAL,
                    [
                        (
                            first + i,
                            e.device,
                            e.sensor,
                            e.value,
                            e.timestamp,
                            e.arrival,
                            int(e.historical),
                        )
                        for i, e in enumerate(journal)
                    ],
                )
            result = _BatchResult(next_seq=last + 1, max_id=self._max_id)
            if unique:
                sizes = [entry_size(e) for e in unique]
                cursor = await db.executemany(
                    _INSERT_OUTBOX,
                    [
                        (
                            e.kind,
                            e.dedupe_key,
                            e.payload,
                            e.created_at,
                            size,
                            last,
                            e.dedupe_key,
                            e.dedupe_key,
                        )
                        for e, size in zip(unique, sizes, strict=True)
                    ],
                )
                inserted = cursor.rowcount
                # The inserted rows took the next consecutive ids (see _INSERT_OUTBOX).
                result.rows, result.max_id = inserted, self._max_id + inserted
                if inserted == len(unique):
                    result.bytes = sum(sizes)  # the usual case: saves a round trip
                elif inserted:
                    added = await db.execute_fetchall(
                        "SELECT COALESCE(SUM(size), 0) FROM outbox WHERE id > ?", (self._max_id,)
                    )
                    result.bytes = int(next(iter(added))[0])
            if self._bytes + result.bytes > self.max_outbox_bytes:
                await self._enforce_quota(db, self._bytes + result.bytes, result)
            return result

        def after(result: _BatchResult) -> None:
            self._next_seq = result.next_seq
            self._rows += result.rows
            self._bytes += result.bytes
            self._max_id = result.max_id
            for name, n in result.dropped.items():
                self._counters[name] += n

        await self._transaction(body, after)

    async def _enforce_quota(
        self, db: aiosqlite.Connection, total: int, result: _BatchResult
    ) -> None:
        """Drop the oldest non-alert rows (then the oldest alerts) until under the low water."""
        target = int(self.max_outbox_bytes * QUOTA_LOW_WATER)
        excess = total - target
        freed_bytes = 0
        for condition, counter in _DROP_ORDER:
            if excess - freed_bytes <= 0:
                break
            found = await db.execute_fetchall(
                f"SELECT id FROM (SELECT id, SUM(size) OVER (ORDER BY id) AS running "
                f"FROM outbox WHERE {condition}) WHERE running >= ? LIMIT 1",
                (excess - freed_bytes,),
            )
            bound_rows = list(found)
            if bound_rows:
                upto = int(bound_rows[0][0])
            else:
                upto = 2**62  # every row of this kind
            where = f"{condition} AND id <= ?"
            counted = await db.execute_fetchall(
                f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox WHERE {where}", (upto,)
            )
            n, size = (int(v) for v in next(iter(counted)))
            await db.execute(
                "INSERT OR IGNORE INTO outbox_done(dedupe_key, journal_seq) "
                f"SELECT dedupe_key, journal_seq FROM outbox WHERE {where}",
                (upto,),
            )
            await db.execute(f"DELETE FROM outbox WHERE {where}", (upto,))
            await db.execute(
                "INSERT INTO counters(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (counter, n),
            )
            freed_bytes += size
            result.rows -= n
            result.bytes -= size
            result.dropped[counter] += n

    async def replay_journal(self, after_seq: int) -> AsyncIterator[JournalEntry]:
        position = after_seq
        while True:
            rows = await self._read(
                "SELECT seq, device, sensor, value, timestamp, arrival, historical "
                "FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
                (position, REPLAY_CHUNK),
            )
            for seq, device, sensor, value, timestamp, arrival, historical in rows:
                yield JournalEntry(
                    int(seq),
                    device,
                    sensor,
                    float(value),
                    int(timestamp),
                    int(arrival),
                    bool(historical),
                )
            if len(rows) < REPLAY_CHUNK:
                return
            position = int(rows[-1][0])

    # -- checkpoints -----------------------------------------------------------------------

    async def write_checkpoint(
        self, changed: Mapping[str, Any], journal_seq: int, *, removed: Collection[str] = ()
    ) -> int:
        self._check_checkpoint(changed, journal_seq, removed)
        created_at = self._now_ms()
        encoded = [(key, dump_snapshot(key, snap)) for key, snap in changed.items()]
        gone = list(removed)

        async def body(db: aiosqlite.Connection) -> int:
            cursor = await db.execute(
                "INSERT INTO checkpoints(journal_seq, created_at, keys) VALUES (?, ?, ?)",
                (journal_seq, created_at, len(encoded) + len(gone)),
            )
            checkpoint_id = int(cursor.lastrowid or 0)
            rows: list[tuple[str, int, bytes | None]] = [
                (key, checkpoint_id, data) for key, data in encoded
            ]
            rows.extend((key, checkpoint_id, None) for key in gone)
            if rows:
                await db.executemany(
                    "INSERT INTO checkpoint_rows(key, checkpoint_id, data) VALUES (?, ?, ?)",
                    rows,
                )
            await self._prune(db, journal_seq)
            return checkpoint_id

        checkpoint_id = await self._transaction(body)
        await self._prune_journal(journal_seq)
        return checkpoint_id

    async def _prune_journal(self, journal_seq: int) -> None:
        """Delete the journal up to ``journal_seq`` in slices, each its own transaction.

        Replay starts after the newest checkpoint's ``journal_seq``, so rows it covers are dead
        whether deleted with it or after it (a crash in between leaves some for the next
        checkpoint). One DELETE of a 5 s checkpoint interval's journal at 18k readings/s
        (89,000 rows) held the store, and so the next batch's commit, for ~50 ms; slices let
        commits in between.
        """
        low = (await self._read("SELECT MIN(seq) FROM journal"))[0][0]
        if low is None:
            return
        low = int(low)
        while low <= journal_seq:
            high = min(journal_seq, low + PRUNE_SLICE - 1)

            async def body(db: aiosqlite.Connection, high: int = high) -> None:
                await db.execute("DELETE FROM journal WHERE seq <= ?", (high,))

            await self._transaction(body)
            low = high + 1

    async def _prune(self, db: aiosqlite.Connection, journal_seq: int) -> None:
        kept = await db.execute_fetchall(
            "SELECT id FROM checkpoints ORDER BY id DESC LIMIT 1 OFFSET ?",
            (self.keep_checkpoints - 1,),
        )
        oldest = [int(row[0]) for row in kept]
        if oldest:
            bound = oldest[0]
            await db.execute("DELETE FROM checkpoints WHERE id < ?", (bound,))
            # A row before the oldest kept checkpoint is needed only as a key's base there.
            await db.execute(
                "DELETE FROM checkpoint_rows WHERE checkpoint_id < :b AND EXISTS ("
                " SELECT 1 FROM checkpoint_rows AS newer WHERE newer.key = checkpoint_rows.key"
                " AND newer.checkpoint_id > checkpoint_rows.checkpoint_id"
                " AND newer.checkpoint_id <= :b)",
                {"b": bound},
            )
            await db.execute(
                "DELETE FROM checkpoint_rows WHERE checkpoint_id <= :b AND data IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM checkpoint_rows AS older"
                " WHERE older.key = checkpoint_rows.key"
                " AND older.checkpoint_id < checkpoint_rows.checkpoint_id)",
                {"b": bound},
            )
        await db.execute("DELETE FROM outbox_done WHERE journal_seq <= ?", (journal_seq,))

    async def load_checkpoint(self) -> Checkpoint | None:
        self._check_open()
        heads = await self._read(
            "SELECT id, journal_seq, created_at FROM checkpoints ORDER BY id DESC LIMIT 1"
        )
        if not heads:
            return None
        checkpoint_id, journal_seq, created_at = (int(v) for v in heads[0])
        rows = await self._read(
            "SELECT key, data FROM checkpoint_rows WHERE checkpoint_id <= ? "
            "ORDER BY key, checkpoint_id",
            (checkpoint_id,),
        )
        # Rows come per key in checkpoint order: the last one wins.
        newest: dict[str, bytes | None] = {key: data for key, data in rows}
        snapshots = {k: load_snapshot(v) for k, v in newest.items() if v is not None}
        return Checkpoint(checkpoint_id, journal_seq, snapshots, created_at)

    async def load_checkpointed(self, key: str) -> Any | None:
        self._check_open()
        # Rows of checkpoints being written are not visible (one connection, one transaction
        # at a time); rows of pruned checkpoints are gone or still the key's base.
        rows = await self._read(
            "SELECT data FROM checkpoint_rows WHERE key = ? ORDER BY checkpoint_id DESC LIMIT 1",
            (key,),
        )
        data = rows[0][0] if rows else None
        return None if data is None else load_snapshot(data)

    # -- parked devices --------------------------------------------------------------------

    async def put_snapshot(self, key: str, snapshot: Any) -> None:
        self._check_open()
        data = dump_snapshot(key, snapshot)
        now = self._now_ms()

        async def body(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO parked(key, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET data = excluded.data, "
                "updated_at = excluded.updated_at",
                (key, data, now),
            )

        await self._transaction(body)

    async def get_snapshot(self, key: str) -> Any | None:
        self._check_open()
        rows = await self._read("SELECT data FROM parked WHERE key = ?", (key,))
        return load_snapshot(rows[0][0]) if rows else None

    async def delete_snapshot(self, key: str) -> None:
        self._check_open()

        async def body(db: aiosqlite.Connection) -> None:
            await db.execute("DELETE FROM parked WHERE key = ?", (key,))

        await self._transaction(body)

    # -- outbox consumers ------------------------------------------------------------------

    async def outbox_read(self, cursor: str, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        position = max(self._check_cursor(cursor), after)
        # One range scan of the rowid B-tree; the columns come back as the entry's types
        # (INTEGER, TEXT, BLOB), so the rows are the entries' fields as they are.
        rows = await self._read(_READ_OUTBOX, (position, max(0, limit)))
        return list(map(OutboxEntry._make, rows))

    async def outbox_ack(self, cursor: str, upto_id: int) -> None:
        position = self._check_cursor(cursor)
        if upto_id <= position:
            return
        upto_id = min(upto_id, self._max_id)

        positions = {**self._cursors, cursor: upto_id}
        floor = min(positions[name] for name in self._registered)

        async def body(db: aiosqlite.Connection) -> tuple[int, int]:
            await db.execute(
                "INSERT INTO cursors(name, position) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET position = excluded.position",
                (cursor, upto_id),
            )
            counted = await db.execute_fetchall(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox WHERE id <= ?", (floor,)
            )
            n, size = (int(v) for v in next(iter(counted)))
            if n:
                # A key only needs remembering while a restart could make its output again.
                # A row whose batch ended before the newest checkpoint's journal position was
                # committed before that checkpoint was taken, so the state it restores already
                # includes it and nothing replayed after it makes it again (the checkpoint
                # pruned such keys anyway). That is most of a long backlog; rows at or after
                # the position (and all of them before the first checkpoint) are remembered.
                await db.execute(
                    "INSERT OR IGNORE INTO outbox_done(dedupe_key, journal_seq) "
                    "SELECT dedupe_key, journal_seq FROM outbox WHERE id <= ? AND journal_seq >= "
                    "COALESCE((SELECT journal_seq FROM checkpoints ORDER BY id DESC LIMIT 1), 0)",
                    (floor,),
                )
                await db.execute("DELETE FROM outbox WHERE id <= ?", (floor,))
            return n, size

        def after(deleted: tuple[int, int]) -> None:
            self._cursors[cursor] = max(self._cursors.get(cursor, 0), upto_id)
            self._rows -= deleted[0]
            self._bytes -= deleted[1]

        deleted, _ = await self._transaction(body, after)
        if deleted and self._rows <= RECLAIM_BACKLOG_ROWS:
            await self._reclaim()

    async def _reclaim(self) -> None:
        """Give freed pages back to the file system, a bounded step at a time.

        Only once the backlog is (nearly) drained: while a backlog drains, a vacuum would
        move the pages of rows not yet sent into the holes the sent ones left, page after
        page, only for them to be deleted soon after; new rows reuse the free pages anyway.
        At the end the free pages are at the end of the file and go back with little to move.
        """
        db = self._conn
        before = None
        while True:
            rows = await self._read("PRAGMA freelist_count")
            free = int(rows[0][0]) if rows else 0
            if free < VACUUM_THRESHOLD_PAGES or (before is not None and free >= before):
                return  # done (or a file without incremental auto-vacuum: nothing to gain)
            before = free
            # sqlite3's execute() steps a statement without result columns only once, and
            # incremental_vacuum frees one page per step; executescript steps it to the end.
            # The WAL checkpoint then writes the shorter file back and truncates the WAL, so
            # the space is returned to the file system now, not at the next auto-checkpoint.
            # The lock is let go between steps, so commits are never held back for long.
            async with self._lock:
                with sqlite_errors(self.path):
                    await db.executescript(
                        f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES});"
                        "PRAGMA wal_checkpoint(TRUNCATE);"
                    )

    async def outbox_stats(self) -> OutboxStats:
        self._check_open()
        oldest = await self._read("SELECT created_at FROM outbox ORDER BY id LIMIT 1")
        return OutboxStats(
            rows=self._rows,
            bytes=self._bytes,
            oldest_created_at=int(oldest[0][0]) if oldest else None,
            dropped_windows=self._counters["dropped_windows"],
            dropped_alerts=self._counters["dropped_alerts"],
        )
