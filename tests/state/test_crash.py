"""Crash safety with real processes and real damaged files.

A child process commits batches in a loop and is SIGKILLed at a random moment; reopening the
file must show a prefix of the batches, every batch wholly present or wholly absent, and at
least every batch the child had seen committed. Garbage, truncated and scribbled-over files are
moved aside with one log line, and the gateway starts fresh instead of crash-looping.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.state import JournalEntry, OutboxEntry, SqliteGatewayStore
from tests.services import terminate_quietly
from tests.state._crash_child import CHECKPOINT_EVERY, PER_BATCH

ROOT = Path(__file__).resolve().parents[2]


def _run_and_kill(path: Path, kill_after: int, module: str = "tests.state._crash_child") -> int:
    """Start the child, SIGKILL it once it reported ``kill_after`` commits; return the last one
    it reported."""
    child = subprocess.Popen(
        [sys.executable, "-m", module, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = 0
    deadline = time.monotonic() + 30
    try:
        assert child.stdout is not None
        for line in child.stdout:
            last = int(line.split()[1])
            if last >= kill_after:
                os.kill(child.pid, signal.SIGKILL)  # mid-way through the next batch
                break
            if time.monotonic() > deadline:
                pytest.fail(f"child made only {last} commits in 30 s")
        else:
            stderr = child.stderr.read() if child.stderr else ""
            pytest.fail(f"child exited before {kill_after} commits: {stderr[-2000:]}")
        # lines already written but not read yet were committed too
        rest = child.stdout.read()
        for line in rest.splitlines():
            last = int(line.split()[1])
    finally:
        terminate_quietly(child)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    return last


@pytest.mark.parametrize("attempt", range(3))
async def test_sigkill_leaves_whole_batches_only(tmp_path: Path, attempt: int) -> None:
    path = tmp_path / "state.db"
    reported = _run_and_kill(path, kill_after=random.Random(attempt).randint(5, 40))
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        checkpoint = await store.load_checkpoint()
        store.register_cursor("check")
        outbox = await store.outbox_read("check", 1_000_000)
        journal = [e async for e in store.replay_journal(0)]
        next_seq = store.next_seq
    # outbox: batches 1..m, each with all its entries, m >= what the child saw committed
    per_batch = Counter(int(e.dedupe_key.split("-")[0][1:]) for e in outbox)
    m = max(per_batch)
    assert m >= reported
    assert sorted(per_batch) == list(range(1, m + 1))
    assert set(per_batch.values()) == {PER_BATCH}
    assert [e.id for e in outbox] == sorted(e.id for e in outbox)
    # checkpoint: complete and consistent with the journal position it names
    assert checkpoint is not None
    last_in_checkpoint = checkpoint.snapshots["progress"]["last"]
    assert last_in_checkpoint % CHECKPOINT_EVERY == 0
    assert checkpoint.journal_seq == last_in_checkpoint * PER_BATCH
    # journal after it: whole batches, in order, up to m, nothing lost in between
    batches = Counter(int(e.device[1:]) for e in journal)
    assert sorted(batches) == list(range(last_in_checkpoint + 1, m + 1))
    assert set(batches.values()) <= {PER_BATCH}
    assert [e.seq for e in journal] == list(range(checkpoint.journal_seq + 1, next_seq))
    assert next_seq == m * PER_BATCH + 1


@pytest.mark.parametrize("attempt", range(2))
async def test_sigkilled_operator_keeps_one_whole_flush(tmp_path: Path, attempt: int) -> None:
    from gateway.state import SqliteBackend, StatefulOperator
    from tests.state._operator_crash_child import KEYS

    path = tmp_path / "state.db"
    module = "tests.state._operator_crash_child"
    reported = _run_and_kill(path, random.Random(10 + attempt).randint(3, 30), module)
    async with SqliteBackend(path) as backend, StatefulOperator(backend, "crash") as op:
        rounds = {op.get(f"key-{i}")["round"] for i in range(KEYS)}
    # every key from the same flush: never half of one round and half of the next
    assert len(rounds) == 1
    assert rounds.pop() >= reported


def test_window_survives_repeated_sigkills_exactly_once(tmp_path: Path) -> None:
    """Restore the newest checkpoint, replay the journal after it, resume after the last
    durable reading: across several SIGKILLs every reading counts exactly once."""
    import json

    from tests.state._window_child import N

    path = tmp_path / "state.db"
    module = "tests.state._window_child"
    rng = random.Random(7)
    acked = 0
    for kill_at in sorted(rng.sample(range(20, N - 20), 3)):
        if kill_at <= acked:
            continue
        acked = max(acked, _run_and_kill(path, kill_at, module))
    result = subprocess.run(
        [sys.executable, "-m", module, str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    window = json.loads(result.stdout.strip().splitlines()[-1].removeprefix("done "))
    assert window == {"sum": N * (N + 1) // 2, "count": N, "last": N}


async def _fill(path: Path, batches: int = 40) -> None:
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        for k in range(batches):
            journal = [JournalEntry(0, f"d{k}", "s", 1.0, i, i) for i in range(200)]
            outbox = [OutboxEntry(0, "window", f"{k}-{i}", os.urandom(300), 1) for i in range(50)]
            await store.commit_batch(journal, outbox)
        await store.write_checkpoint({f"d{i}": {"v": "x" * 500} for i in range(500)}, 4000)


def _wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _moved_aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


async def _assert_fresh_start(path: Path, caplog: pytest.LogCaptureFixture, what: str) -> None:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gateway.state"):
        async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
            assert await store.load_checkpoint() is None
            assert store.next_seq == 1
            await store.commit_batch([JournalEntry(0, "d", "s", 1.0, 1, 1)], [])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, what
    message = errors[0].getMessage()
    assert "damaged" in message
    assert "moved it to" in message
    assert "\n" not in message
    moved = _moved_aside(path)
    assert len(moved) == 1, what
    assert str(moved[0]) in message
    # the next start uses the fresh file: no second move, no loop
    caplog.clear()
    async with SqliteGatewayStore(path, now_ms=lambda: 1) as store:
        assert [e.device async for e in store.replay_journal(0)] == ["d"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(_moved_aside(path)) == 1


async def test_garbage_file_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(random.Random(1).randbytes(256 * 1024))
    await _assert_fresh_start(path, caplog, "garbage")
    assert _moved_aside(path)[0].read_bytes()[:16] != b"SQLite format 3\x00"


async def test_truncated_file_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    await _fill(path)
    size = path.stat().st_size
    assert size > 1_000_000
    assert _wal_size(path) == 0  # closed cleanly: everything is in the main file
    with path.open("r+b") as f:
        f.truncate(size // 2)
    await _assert_fresh_start(path, caplog, "truncated")


async def test_scribbled_pages_are_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    await _fill(path)
    rng = random.Random(2)
    with path.open("r+b") as f:
        for page in range(3, 200, 7):  # keep the header page, ruin b-tree pages
            f.seek(page * 4096)
            f.write(rng.randbytes(4096))
    await _assert_fresh_start(path, caplog, "scribbled")


async def test_newer_schema_is_refused_not_moved(tmp_path: Path) -> None:
    import sqlite3

    from gateway.state import StateConfigError

    path = tmp_path / "state.db"
    async with SqliteGatewayStore(path, now_ms=lambda: 1):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StateConfigError, match="schema version 99"):
        async with SqliteGatewayStore(path, now_ms=lambda: 1):
            pass
    assert not _moved_aside(path)


async def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    from gateway.state import StateConfigError

    with pytest.raises(StateConfigError, match="does not exist"):
        async with SqliteGatewayStore(tmp_path / "nope" / "state.db", now_ms=lambda: 1):
            pass
