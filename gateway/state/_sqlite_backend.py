"""The SQLite backend: one file (WAL, synchronous=FULL), one transaction per batch.

Tables ``kv`` (live state, with an ``expires_at`` column swept by :meth:`sweep` and filtered on
every read) and ``kv_checkpoints``/``kv_checkpoint_rows``; the file is opened like the
gateway store's (see ``_sqlite_file``: damaged files moved aside, schema migrations) and can be
the same file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Collection, Mapping
from pathlib import Path

import aiosqlite

from gateway.state._backend import CheckpointInfo, Entry, StateBackend
from gateway.state._errors import StateUsageError
from gateway.state._sqlite_file import (
    convert_runtime,
    open_database,
    run_shielded,
    sqlite_errors,
)

__all__ = ["SqliteBackend"]

_UPSERT = (
    "INSERT INTO kv(ns, key, value, expires_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)


class SqliteBackend(StateBackend):
    """Operator state in the SQLite file at ``path``."""

    kind = "sqlite"

    def __init__(self, path: Path, *, keep_checkpoints: int = 3) -> None:
        super().__init__(keep_checkpoints=keep_checkpoints)
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> None:
        self._db = await open_database(self.path)

    async def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        self._check_open()
        assert self._db is not None
        return self._db

    async def _write(self, statements: list[tuple[str, list[tuple[object, ...]]]]) -> None:
        """Run ``(sql, rows)`` pairs (executemany) in one transaction, shielded."""
        db = self._conn

        async def run() -> None:
            async with self._lock:
                try:
                    await db.execute("BEGIN IMMEDIATE")
                    try:
                        for sql, rows in statements:
                            if len(rows) == 1:
                                await db.execute(sql, rows[0])
                            elif rows:
                                await db.executemany(sql, rows)
                        await db.execute("COMMIT")
                    except BaseException:
                        if db.in_transaction:
                            await db.execute("ROLLBACK")
                        raise
                except sqlite3.Error as exc:
                    raise convert_runtime(exc, self.path) from exc

        await run_shielded(run())

    async def _fetch(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        db = self._conn
        async with self._lock:
            with sqlite_errors(self.path):
                return [tuple(row) for row in await db.execute_fetchall(sql, params)]

    async def load(self, ns: str, now_ms: int) -> dict[str, Entry]:
        rows = await self._fetch(
            "SELECT key, value, expires_at FROM kv WHERE ns = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (ns, now_ms),
        )
        return {str(k): (bytes(v), None if e is None else int(e)) for k, v, e in rows}  # type: ignore[call-overload]

    async def write_batch(
        self, ns: str, upserts: Mapping[str, Entry], deletes: Collection[str], now_ms: int
    ) -> None:
        gone = [(ns, key) for key in deletes]
        rows: list[tuple[object, ...]] = []
        for key, (value, expires) in upserts.items():
            if expires is not None and expires <= now_ms:
                gone.append((ns, key))
            else:
                rows.append((ns, key, value, expires))
        await self._write(
            [
                ("DELETE FROM kv WHERE ns = ? AND key = ?", list(gone)),
                (_UPSERT, rows),
            ]
        )

    async def checkpoint(
        self, ns: str, name: str, entries: Mapping[str, Entry], now_ms: int
    ) -> int:
        db = self._conn

        async def run() -> int:
            async with self._lock:
                try:
                    await db.execute("BEGIN IMMEDIATE")
                    try:
                        cursor = await db.execute(
                            "INSERT INTO kv_checkpoints(ns, name, created_at, keys) "
                            "VALUES (?, ?, ?, ?)",
                            (ns, name, now_ms, len(entries)),
                        )
                        new_id = int(cursor.lastrowid or 0)
                        await db.executemany(
                            "INSERT INTO kv_checkpoint_rows(checkpoint_id, key, value, "
                            "expires_at) VALUES (?, ?, ?, ?)",
                            [(new_id, k, v, e) for k, (v, e) in entries.items()],
                        )
                        old = await db.execute_fetchall(
                            "SELECT id FROM kv_checkpoints WHERE ns = ? ORDER BY id DESC "
                            "LIMIT -1 OFFSET ?",
                            (ns, self.keep_checkpoints),
                        )
                        for (old_id,) in old:
                            await db.execute(
                                "DELETE FROM kv_checkpoint_rows WHERE checkpoint_id = ?",
                                (old_id,),
                            )
                            await db.execute("DELETE FROM kv_checkpoints WHERE id = ?", (old_id,))
                        await db.execute("COMMIT")
                    except BaseException:
                        if db.in_transaction:
                            await db.execute("ROLLBACK")
                        raise
                except sqlite3.Error as exc:
                    raise convert_runtime(exc, self.path) from exc
                return new_id

        return await run_shielded(run())

    async def restore(self, ns: str, checkpoint_id: int, now_ms: int) -> dict[str, Entry]:
        found = await self._fetch(
            "SELECT 1 FROM kv_checkpoints WHERE id = ? AND ns = ?", (checkpoint_id, ns)
        )
        if not found:
            msg = f"no checkpoint {checkpoint_id} for operator {ns!r}"
            raise StateUsageError(msg)
        await self._write(
            [
                ("DELETE FROM kv WHERE ns = ?", [(ns,)]),
                (
                    "INSERT INTO kv(ns, key, value, expires_at) SELECT ?, key, value, "
                    "expires_at FROM kv_checkpoint_rows WHERE checkpoint_id = ? "
                    "AND (expires_at IS NULL OR expires_at > ?)",
                    [(ns, checkpoint_id, now_ms)],
                ),
            ]
        )
        return await self.load(ns, now_ms)

    async def list_checkpoints(self, ns: str) -> list[CheckpointInfo]:
        rows = await self._fetch(
            "SELECT id, name, created_at, keys FROM kv_checkpoints WHERE ns = ? ORDER BY id",
            (ns,),
        )
        return [CheckpointInfo(int(i), str(n), int(c), int(k)) for i, n, c, k in rows]  # type: ignore[call-overload]

    async def sweep(self, ns: str, now_ms: int) -> int:
        db = self._conn
        async with self._lock:
            with sqlite_errors(self.path):
                cursor = await db.execute(
                    "DELETE FROM kv WHERE ns = ? AND expires_at IS NOT NULL AND expires_at <= ?",
                    (ns, now_ms),
                )
                return int(cursor.rowcount)
