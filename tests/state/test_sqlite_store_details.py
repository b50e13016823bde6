"""SQLite-specific promises: 10,000 devices load in under 3 s, checkpoints write only what
changed, drained outbox space goes back to the file system, cancellation never tears the
in-memory view, and the file is WAL with synchronous=FULL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway.state import JournalEntry, OutboxEntry, SqliteGatewayStore

DEVICES = 10_000


def _snapshot(i: int) -> dict[str, object]:
    return {
        "watermark": 1_764_300_000_000 + i,
        "windows": [
            {"start": 1_764_300_000_000, "count": 3, "sum": 61.5, "min": 20.0, "max": 21.5}
        ],
        "detectors": {"zscore": {"n": 120, "mean": 20.5, "m2": 3.25}, "ewma": {"s": 20.1}},
        "alerts": {},
        "pad": "x" * 400,
    }


def _disk_bytes(path: Path) -> int:
    """The file and its WAL, as the SD card sees them."""
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        value = int(conn.execute(sql).fetchone()[0])
    conn.close()
    return value


async def test_ten_thousand_devices_load_whole_and_write_incrementally(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    snaps = {f"device-{i:05d}": _snapshot(i) for i in range(DEVICES)}
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        await store.commit_batch([JournalEntry(0, "d", "s", 1.0, 1, 1)], [])
        await store.write_checkpoint(snaps, journal_seq=1)
        rows_full = _count(path, "SELECT COUNT(*) FROM checkpoint_rows")
        changed = {f"device-{i:05d}": {**_snapshot(i), "watermark": 0} for i in range(100)}
        snaps.update(changed)
        await store.write_checkpoint(changed, journal_seq=1)
        rows_after = _count(path, "SELECT COUNT(*) FROM checkpoint_rows")
    assert rows_full == DEVICES
    assert rows_after == DEVICES + 100  # only the changed keys were written
    # How fast this loads is bench/bench_startup.py's business, not a test's.
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        loaded = await store.load_checkpoint()
    assert loaded is not None
    assert loaded.snapshots == snaps


async def test_drained_outbox_gives_space_back(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        store.register_cursor("redis")
        for k in range(20):
            await store.commit_batch(
                [], [OutboxEntry(0, "window", f"{k}-{i}", b"p" * 1000, 1) for i in range(250)]
            )
        full_pages = _count(path, "PRAGMA page_count")
        full_bytes = _disk_bytes(path)
        assert (await store.outbox_stats()).rows == 5000
        while batch := await store.outbox_read("redis", 500):
            await store.outbox_ack("redis", batch[-1].id)
        stats = await store.outbox_stats()
        assert (stats.rows, stats.bytes) == (0, 0)
        drained_pages = _count(path, "PRAGMA page_count")
        free_pages = _count(path, "PRAGMA freelist_count")
        drained_bytes = _disk_bytes(path)
    assert full_pages > 1000
    assert drained_bytes < full_bytes // 2, (full_bytes, drained_bytes)
    assert drained_pages < full_pages // 2
    assert free_pages < 256


async def test_file_is_wal_with_full_sync_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with SqliteGatewayStore(path, now_ms=lambda: 1):
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
            assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
        conn.close()


async def test_cancelled_commit_keeps_file_and_memory_in_step(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        batch = [JournalEntry(0, "d", "s", float(i), i, i) for i in range(20_000)]
        task = asyncio.create_task(store.commit_batch(batch, []))
        await asyncio.sleep(0)  # let it start, then cancel it mid-transaction
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.commit_batch([JournalEntry(0, "d", "s", -1.0, 1, 1)], [])
        seqs = [e.seq async for e in store.replay_journal(0)]
        # the cancelled batch either committed whole (shielded) or not at all
        assert seqs == list(range(1, store.next_seq))
        assert len(seqs) in (1, 20_001)


async def test_a_checkpoint_writes_a_row_per_change_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    rows = "SELECT COUNT(*) FROM checkpoint_rows"
    async with SqliteGatewayStore(path, keep_checkpoints=10, now_ms=lambda: 1) as store:
        await store.commit_batch([JournalEntry(0, "d", "s", 1.0, 1, 1)], [])
        await store.write_checkpoint({"a": {"v": 1}, "b": {"v": 2}}, 1)
        assert _count(path, rows) == 2
        await store.write_checkpoint({}, 1)  # nothing changed: nothing to write
        assert _count(path, rows) == 2
        await store.write_checkpoint({"b": {"v": 3}}, 1)  # one changed key: one row
        assert _count(path, rows) == 3
        await store.write_checkpoint({}, 1, removed=["a"])  # a removal: one row (NULL)
        assert _count(path, rows) == 4
        loaded = await store.load_checkpoint()
        assert loaded is not None
        assert loaded.snapshots == {"b": {"v": 3}}


async def test_a_new_state_file_gets_a_new_epoch(tmp_path: Path) -> None:
    async with SqliteGatewayStore(tmp_path / "a.db", now_ms=lambda: 0) as first:
        epoch = first.epoch
    (tmp_path / "a.db").rename(tmp_path / "a.db.corrupt")  # as when moved aside
    async with SqliteGatewayStore(tmp_path / "a.db", now_ms=lambda: 0) as second:
        assert second.epoch not in (epoch, "0")


async def test_acknowledged_keys_a_checkpoint_covers_are_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    reading = JournalEntry(0, "d1", "temperature", 1.0, 1, 1)
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        store.register_cursor("redis")
        for k in range(3):
            await store.commit_batch(
                [reading], [OutboxEntry(0, "window", f"{k}-{i}", b"p", 1) for i in range(10)]
            )
        await store.write_checkpoint({}, journal_seq=3)
        pending = await store.outbox_read("redis", 100)
        await store.outbox_ack("redis", pending[-1].id)
    # batches 1 and 2 (journal seqs 1, 2) end before the checkpoint's position (3): their keys
    # are not needed; batch 3's are (a restart could make its outputs again)
    assert _count(path, "SELECT COUNT(*) FROM outbox_done") == 10


async def test_a_checkpoint_prunes_its_journal_in_slices_with_commits_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.state._sqlite_store as sqlite_store

    monkeypatch.setattr(sqlite_store, "PRUNE_SLICE", 100)
    path = tmp_path / "state.db"
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        await store.commit_batch(
            [JournalEntry(0, "d", "s", float(i), i, i) for i in range(1_000)], []
        )
        checkpoint = asyncio.create_task(store.write_checkpoint({"d": {"n": 1}}, 950))
        await asyncio.sleep(0)
        # A batch committed while the checkpoint is written lands between two slices.
        await store.commit_batch([JournalEntry(0, "d", "s", 1.0, 2_000, 2_000)], [])
        await checkpoint
        replayed = [e.seq async for e in store.replay_journal(950)]
    assert replayed == [*range(951, 1_001), 1_001]
    assert _count(path, "SELECT COUNT(*) FROM journal") == 51
