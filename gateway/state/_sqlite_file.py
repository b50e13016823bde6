"""Opening the SQLite state file: pragmas, integrity check, move-aside of a damaged file,
schema version and migrations, and conversion of sqlite3 errors.

Durability choice: ``journal_mode=WAL`` with ``synchronous=FULL``. In WAL mode FULL syncs the
WAL at every commit, so a transaction is on stable storage when COMMIT returns and survives a
power cut; NORMAL would only sync at WAL checkpoints and a power cut could lose the last
commits (never corrupt the file). The gateway acknowledges MQTT messages after a commit, so it
needs FULL; the cost is one fsync per *batch* (group commit), not per reading.

A file SQLite reports as damaged (not a database, malformed, short read, failed
``quick_check``) is renamed to ``<name>.corrupt-<UTC timestamp>`` (with its ``-wal``/``-shm``),
one error line is logged, and a fresh file is created: the gateway starts empty instead of
crash-looping. A file from a newer schema is refused (fatal) rather than moved: that is a
downgrade, and the data is fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import sqlite3
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from gateway.state._errors import (
    StateConfigError,
    StateCorruptError,
    StateError,
    StateUnavailable,
)

__all__ = ["SCHEMA_VERSION", "open_database", "run_shielded", "sqlite_errors"]

log = logging.getLogger("gateway.state")

_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_SQLITE_IOERR_SHORT_READ = 522
_CORRUPT_CODES = frozenset({_SQLITE_CORRUPT, _SQLITE_NOTADB, _SQLITE_IOERR_SHORT_READ})
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_READONLY = 8

# Each entry migrates the schema from version i to i + 1, in one transaction.
_MIGRATIONS: list[list[str]] = [
    [
        # The gateway store (gateway.state._sqlite_store).
        """CREATE TABLE journal(
            seq INTEGER PRIMARY KEY, device TEXT NOT NULL, sensor TEXT NOT NULL,
            value REAL NOT NULL, timestamp INTEGER NOT NULL, arrival INTEGER NOT NULL,
            historical INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE checkpoints(
            id INTEGER PRIMARY KEY AUTOINCREMENT, journal_seq INTEGER NOT NULL,
            created_at INTEGER NOT NULL, keys INTEGER NOT NULL)""",
        # One row per key and checkpoint that changed it; data NULL = key removed.
        """CREATE TABLE checkpoint_rows(
            key TEXT NOT NULL, checkpoint_id INTEGER NOT NULL, data BLOB,
            PRIMARY KEY(key, checkpoint_id))""",
        """CREATE TABLE parked(
            key TEXT PRIMARY KEY, data BLOB NOT NULL, updated_at INTEGER NOT NULL)""",
        """CREATE TABLE outbox(
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
            dedupe_key TEXT NOT NULL UNIQUE, payload BLOB NOT NULL,
            created_at INTEGER NOT NULL, size INTEGER NOT NULL, journal_seq INTEGER NOT NULL)""",
        # Keys of entries delivered or dropped, remembered until a checkpoint covers them.
        """CREATE TABLE outbox_done(
            dedupe_key TEXT PRIMARY KEY, journal_seq INTEGER NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX outbox_done_seq ON outbox_done(journal_seq)",
        "CREATE TABLE cursors(name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
        "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        # The generic StateBackend (gateway.state._sqlite_backend).
        """CREATE TABLE kv(
            ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at INTEGER,
            PRIMARY KEY(ns, key))""",
        "CREATE INDEX kv_expiry ON kv(expires_at) WHERE expires_at IS NOT NULL",
        """CREATE TABLE kv_checkpoints(
            id INTEGER PRIMARY KEY AUTOINCREMENT, ns TEXT NOT NULL, name TEXT NOT NULL,
            created_at INTEGER NOT NULL, keys INTEGER NOT NULL)""",
        """CREATE TABLE kv_checkpoint_rows(
            checkpoint_id INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
            expires_at INTEGER, PRIMARY KEY(checkpoint_id, key))""",
    ],
]
SCHEMA_VERSION = len(_MIGRATIONS)


async def open_database(path: Path, *, now: dt.datetime | None = None) -> aiosqlite.Connection:
    """Open (creating or migrating) the state file at ``path``.

    A damaged file is moved aside and replaced by a fresh one (see the module docstring).

    Raises:
        StateConfigError: the directory is missing or not writable, or the file was written
            by a newer version.
    """
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        msg = f"state directory {str(directory)!r} does not exist (create it, owned by the gateway)"
        raise StateConfigError(msg)
    if not os.access(directory, os.W_OK | os.X_OK):
        msg = f"state directory {str(directory)!r} is not writable by this user"
        raise StateConfigError(msg)
    try:
        return await _open_checked(path)
    except _Damaged as damaged:
        moved = _move_aside(path, now or dt.datetime.now(dt.UTC))
        log.error(
            "state file %s is damaged (%s); moved it to %s and starting with empty state",
            path,
            damaged.reason,
            moved,
        )
    try:
        return await _open_checked(path)
    except _Damaged as damaged:
        msg = f"state file {str(path)!r} is damaged again right after a fresh start: {damaged}"
        raise StateCorruptError(msg) from damaged


class _Damaged(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _open_checked(path: Path) -> aiosqlite.Connection:
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise _convert(exc, path) from exc
    try:
        # auto_vacuum only takes effect on a file without tables, so set it first.
        await conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        _require_wal(await _scalar(conn, "PRAGMA journal_mode=WAL"), path)
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA journal_size_limit=67108864")
        await conn.execute("PRAGMA temp_store=MEMORY")
        await conn.execute("PRAGMA cache_size=-2000")  # 2 MB (default): 16 MB was 12 MB of RSS
        _require_ok(list(await conn.execute_fetchall("PRAGMA quick_check")))
        await _migrate(conn, path)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await conn.close()
        if isinstance(exc, sqlite3.Error):
            converted = _convert(exc, path)
            raise converted from exc
        raise
    return conn


def _require_wal(mode: object, path: Path) -> None:
    if str(mode).lower() != "wal":
        msg = f"state file {str(path)!r}: cannot switch to WAL mode (got {mode!r})"
        raise StateConfigError(msg)


def _require_ok(check: list[Any]) -> None:
    problems = [str(row[0]) for row in check if row[0] != "ok"]
    if problems:
        msg = f"integrity check: {problems[0]}"
        raise _Damaged(msg)


async def _scalar(conn: aiosqlite.Connection, sql: str) -> object:
    async with conn.execute(sql) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


async def _migrate(conn: aiosqlite.Connection, path: Path) -> None:
    version = int(str(await _scalar(conn, "PRAGMA user_version")))
    if version > SCHEMA_VERSION:
        msg = (
            f"state file {str(path)!r} has schema version {version}, newer than this "
            f"edge-gateway knows ({SCHEMA_VERSION}); upgrade edge-gateway or move the file away"
        )
        raise StateConfigError(msg)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _MIGRATIONS[target - 1]:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version={target}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        if version:
            log.info("state file %s migrated to schema version %d", path, target)


def _move_aside(path: Path, now: dt.datetime) -> Path:
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{target}{suffix}"))
    return target


def _is_damage(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code in _CORRUPT_CODES:
        return True
    text = str(exc)
    return "malformed" in text or "not a database" in text


def _convert(exc: sqlite3.Error, path: Path) -> Exception:
    if _is_damage(exc):
        return _Damaged(str(exc))
    return convert_runtime(exc, path)


def convert_runtime(exc: sqlite3.Error, path: Path) -> StateError:
    """Classify a sqlite3 error raised while the store is open."""
    where = f"state file {str(path)!r}"
    code = getattr(exc, "sqlite_errorcode", None)
    if _is_damage(exc):
        return StateCorruptError(f"{where} is damaged: {exc}; the next start moves it aside")
    if code == _SQLITE_FULL:
        return StateUnavailable(f"{where}: disk full: {exc}")
    if code in (_SQLITE_CANTOPEN, _SQLITE_READONLY):
        return StateConfigError(f"{where} cannot be written: {exc}")
    if isinstance(exc, sqlite3.OperationalError):
        return StateUnavailable(f"{where}: {exc}")
    return StateError(f"{where}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """Convert sqlite3 errors raised inside into :class:`StateError` (cause kept)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise convert_runtime(exc, path) from exc


T = TypeVar("T")


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # seen: a caller that was cancelled no longer awaits it


async def run_shielded(coro: Coroutine[Any, Any, T]) -> T:
    """Run a transaction to its end even if the caller is cancelled meanwhile.

    A cancelled caller sees ``CancelledError`` at once; the transaction still commits or rolls
    back as a whole, and the in-memory bookkeeping done after COMMIT stays in step with the
    file. Whoever closes the connection waits for it through the connection's lock.
    """
    task = asyncio.ensure_future(coro)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)
