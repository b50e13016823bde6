"""Benchmark: outbox drain into Redis, against a bare redis-py pipelined XADD loop.

Cases, all in the same run against the same private redis-server (started here on a free
loopback port, no persistence, flushed before every repeat):

- ``bare XADD pipeline (async)``: the ceiling: redis-py's asyncio client, one ``XADD`` per
  entry with the entry's fields already flattened (no JSON parsing, no dedupe, no device
  hashes), pipelined ``batch`` at a time -- the least work that puts the entries in a stream;
- ``bare XADD pipeline (sync)``: the same with redis-py's blocking client (for reference);
- ``RedisWriter.apply``: the gateway's write path alone: entries already read, one Lua
  script per batch (high-water mark, dedupe sets, streams, device hashes);
- ``RedisSync drain (list outbox)``: the same loop draining a plain list behind the outbox
  Protocol (reads are slices, acks move an index): what the sync loop itself costs;
- ``RedisSync drain (SQLite)``: the whole store-and-forward path: a backlog of N entries in
  the real SQLite outbox (a copy of a prepared file per repeat), drained by ``RedisSync``
  (read batch, apply, acknowledge the cursor, delete the rows) until the outbox is empty.
  Its time for N = 1,000,000 is "the time to drain a 1M-entry backlog".

The entries: 95% window results, 4% device summaries, 1% alerts over 1,000 devices, JSON as
the runtime makes it. Every case's stream length is checked.

Usage: ``python bench/bench_sync.py [--quick] [--entries N] [--repeats N] [--batch N]``
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import Measurement, header, machine, row

from gateway.config import RedisConfig, SyncConfig
from gateway.state import JournalEntry, OutboxEntry, OutboxStats, SqliteGatewayStore
from gateway.sync import REDIS_CURSOR, Outbox, OutboxSignal, RedisSync, RedisWriter
from gateway.sync._records import stream_fields

GW = "bench-gw"
DEVICES = 1_000
BASE_MS = 1_764_300_000_000


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--protected-mode",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)
    client.close()
    return proc, port


def make_entries(n: int) -> list[OutboxEntry]:
    out = []
    for i in range(n):
        device = f"d{i % DEVICES}"
        ts = BASE_MS + (i // DEVICES) * 10_000
        if i % 100 == 99:
            obj: dict[str, object] = {
                "alert_id": f"{GW}:{device}:temperature:threshold:{ts}",
                "gateway_id": GW,
                "device": device,
                "sensor": "temperature",
                "detector": "threshold",
                "severity": "critical",
                "state": "raised",
                "value": 91.5,
                "score": 1.0,
                "event_time": ts,
                "raised_at": ts + 5,
            }
            kind = "alert"
        elif i % 25 == 0:
            obj = {
                "device": device,
                "ts": ts,
                "active_alerts": 0,
                "sensors": {"temperature": {"value": 21.5, "event_time": ts, "last_seen": ts}},
            }
            kind = "device"
        else:
            obj = {
                "device": device,
                "sensor": "temperature",
                "window_start": ts,
                "window_end": ts + 10_000,
                "count": 100,
                "sum": 2150.0,
                "mean": 21.5,
                "min": 20.1,
                "max": 22.9,
                "revision": 0,
            }
            kind = "window"
        out.append(OutboxEntry(i + 1, kind, f"{kind}|{i}", orjson.dumps(obj), ts))  # type: ignore[arg-type]
    return out


def flush(port: int) -> None:
    client = redis.Redis(port=port)
    client.flushall()
    client.close()


@dataclass
class Case:
    name: str
    body: Callable[[], Awaitable[object]]
    items: int
    setup: Callable[[], object]
    rates: list[float] = field(default_factory=list)
    result: object = None


def run_rounds(cases: list[Case], repeats: int) -> list[Measurement]:
    """Every case once per round, rounds repeated: a busy neighbour on the machine slows
    all cases of a round alike instead of one case entirely."""
    for _ in range(repeats):
        for case in cases:
            case.setup()
            gc.collect()
            start = time.perf_counter()
            case.result = asyncio.run(case.body())
            case.rates.append(case.items / (time.perf_counter() - start))
    return [Measurement(c.name, tuple(c.rates), c.result) for c in cases]


async def bare_async(port: int, fields: list[list[bytes | str]], batch: int) -> int:
    client = aioredis.Redis(port=port)
    key = f"edge:{{{GW}}}:windows"
    for start in range(0, len(fields), batch):
        pipe = client.pipeline(transaction=False)
        for f in fields[start : start + batch]:
            pipe.xadd(key, dict(zip(f[::2], f[1::2], strict=True)))  # type: ignore[arg-type]
        await pipe.execute()
    n = int(await client.xlen(key))
    await client.aclose()
    return n


def bare_sync(port: int, fields: list[list[bytes | str]], batch: int) -> int:
    client = redis.Redis(port=port)
    key = f"edge:{{{GW}}}:windows"
    for start in range(0, len(fields), batch):
        pipe = client.pipeline(transaction=False)
        for f in fields[start : start + batch]:
            pipe.xadd(key, dict(zip(f[::2], f[1::2], strict=True)))  # type: ignore[arg-type]
        pipe.execute()
    n = int(client.xlen(key))
    client.close()
    return n


async def writer_apply(port: int, entries: list[OutboxEntry], batch: int, maxlen: int) -> int:
    client = aioredis.Redis(port=port)
    writer = RedisWriter(client, GW, target="bench", windows_maxlen=maxlen)
    for start in range(0, len(entries), batch):
        await writer.apply(entries[start : start + batch])
    n = int(await client.xlen(f"edge:{{{GW}}}:windows")) + int(
        await client.xlen(f"edge:{{{GW}}}:alerts")
    )
    await client.aclose()
    return n


class ListOutbox:
    """The outbox Protocol over a plain list (reads are slices, acks move an index): a store
    that costs next to nothing, so the case measures the sync loop itself."""

    def __init__(self, entries: list[OutboxEntry]) -> None:
        self._entries = entries
        self._ids = [e.id for e in entries]
        self._position = 0  # index of the first unacknowledged entry

    def register_cursor(self, name: str) -> None:
        pass

    async def outbox_read(self, cursor: str, limit: int, *, after: int = 0) -> list[OutboxEntry]:
        start = max(self._position, bisect.bisect_right(self._ids, after))
        return self._entries[start : start + limit]

    async def outbox_ack(self, cursor: str, upto_id: int) -> None:
        self._position = max(self._position, bisect.bisect_right(self._ids, upto_id))

    async def outbox_stats(self) -> OutboxStats:
        rest = len(self._entries) - self._position
        oldest = self._entries[self._position].created_at if rest else None
        return OutboxStats(rest, rest * 300, oldest, 0, 0)


async def drain_list(port: int, entries: list[OutboxEntry], batch: int, maxlen: int) -> int:
    return await _drain(port, ListOutbox(entries), batch, maxlen)


async def prepare_store(path: Path, entries: list[OutboxEntry]) -> None:
    """The backlog as an outage leaves it: batches committed with the journal entries they
    came from, checkpoints taken meanwhile (the runtime takes one every 5 s), the newest
    one covering all but the last batch."""
    reading = JournalEntry(0, "d0", "temperature", 21.5, BASE_MS, BASE_MS)
    async with SqliteGatewayStore(path, now_ms=lambda: BASE_MS, max_outbox_bytes=1 << 40) as store:
        store.register_cursor(REDIS_CURSOR)
        for start in range(0, len(entries), 5_000):
            await store.commit_batch([reading], entries[start : start + 5_000])
        await store.write_checkpoint({"d0": {"n": 1}}, journal_seq=store.next_seq - 1)


async def drain(port: int, path: Path, batch: int, maxlen: int) -> int:
    async with SqliteGatewayStore(path, now_ms=lambda: BASE_MS, max_outbox_bytes=1 << 40) as store:
        return await _drain(port, store, batch, maxlen)


async def _drain(port: int, store: Outbox, batch: int, maxlen: int) -> int:
    expected = (await store.outbox_stats()).rows  # the backlog: all of it is drained
    cfg = SyncConfig(batch_size=batch, windows_maxlen=maxlen, heartbeat_interval="1h")
    sync = RedisSync(
        store,
        gateway_id=GW,
        redis=RedisConfig(url=f"redis://127.0.0.1:{port}/0"),
        sync=cfg,
        signal=OutboxSignal(),
    )
    async with asyncio.TaskGroup() as tg, sync:
        sync.start(tg)
        # The end condition lives in the store (checked at the end); meanwhile the loop's
        # own count of acknowledged entries is polled, which costs the drain nothing.
        while sync.delivered < expected or await store.outbox_read(REDIS_CURSOR, 1):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    client = aioredis.Redis(port=port)
    n = int(await client.xlen(f"edge:{{{GW}}}:windows")) + int(
        await client.xlen(f"edge:{{{GW}}}:alerts")
    )
    await client.aclose()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="100,000 entries")
    args = parser.parse_args()
    n = 100_000 if args.quick else args.entries
    batch = args.batch
    maxlen = n + 1  # no trimming: every case keeps all its entries, so lengths can be checked

    print("# bench_sync: outbox drain into Redis\n")
    print(machine())
    entries = make_entries(n)
    streamed = [e for e in entries if e.kind != "device"]
    fields = [stream_fields(orjson.loads(e.payload)) for e in streamed]
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        work = Path(tmp)
        proc, port = start_redis(work)
        try:
            print(f"redis-server {redis.Redis(port=port).info()['redis_version']} on port {port}")
            print(f"{n:,} entries ({len(streamed):,} streamed), batch {batch}\n")
            prepared = work / "prepared.db"
            t0 = time.perf_counter()
            asyncio.run(prepare_store(prepared, entries))
            print(f"(backlog written to SQLite in {time.perf_counter() - t0:.1f}s)\n")
            copy = work / "state.db"

            def fresh_copy() -> None:
                flush(port)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{copy}{suffix}").unlink(missing_ok=True)
                shutil.copyfile(prepared, copy)

            async def sync_ceiling() -> int:
                return bare_sync(port, fields, batch)

            cases = run_rounds(
                [
                    Case(
                        "bare XADD pipeline (async)",
                        lambda: bare_async(port, fields, batch),
                        len(fields),
                        lambda: flush(port),
                    ),
                    Case(
                        "bare XADD pipeline (sync)", sync_ceiling, len(fields), lambda: flush(port)
                    ),
                    Case(
                        "RedisWriter.apply",
                        lambda: writer_apply(port, entries, batch, maxlen),
                        n,
                        lambda: flush(port),
                    ),
                    Case(
                        "RedisSync drain (list outbox)",
                        lambda: drain_list(port, entries, batch, maxlen),
                        n,
                        lambda: flush(port),
                    ),
                    Case(
                        "RedisSync drain (SQLite)",
                        lambda: drain(port, copy, batch, maxlen),
                        n,
                        fresh_copy,
                    ),
                ],
                args.repeats,
            )
        finally:
            proc.kill()
            proc.wait()
    for case in cases:
        expected = len(fields)
        if case.result != expected:
            raise SystemExit(f"{case.name}: {case.result} stream entries, expected {expected}")
    ceiling = max(cases[:2], key=lambda m: m.median)
    print(header("entries/s"))
    for case in cases:
        print(row(case, ceiling))
    drain_case = cases[-1]
    memory_case = cases[-2]
    print(
        f"\nTime to drain a {n:,}-entry backlog: min {n / drain_case.max:.1f}s, "
        f"median {n / drain_case.median:.1f}s, max {n / drain_case.min:.1f}s"
    )
    print(
        f"Drain vs ceiling ({ceiling.name}), median: SQLite outbox "
        f"{drain_case.median / ceiling.median:.0%}, list outbox "
        f"{memory_case.median / ceiling.median:.0%} (target >= 70%)"
    )


if __name__ == "__main__":
    main()
