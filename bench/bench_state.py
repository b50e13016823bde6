"""Benchmark: the state layer's operator path and durable writes, against ceilings measured
in the same run on the same machine.

Cases (min / median / max over ``--repeats``; ratios use medians):

1. **Operator hot path** (ops/s; one op = one ``put`` or one ``get``): ``StatefulOperator``
   on each backend, against a plain ``dict`` doing the same stores and lookups. The hot path
   never touches the backend, so the backend only shows up in section 2.
2. **Durable writes** (writes/s): ``put`` N distinct keys, then ``await flush()`` -- the time
   until the backend holds all N (SQLite: committed with ``synchronous=FULL``; Redis: the
   ``MULTI``/``EXEC`` acknowledged, server with ``appendonly yes, appendfsync everysec``).
   Ceilings: raw ``sqlite3`` batched upserts of the same rows in one transaction (WAL, FULL);
   a bare redis-py asyncio pipelined ``SET`` loop (no transaction, no index set, no TTL
   encoding); ``redis-benchmark -P 32 -t set`` for the scale of the server itself.
3. **Gateway store** (SQLite): ``commit_batch`` readings/s in group commits of ``--batch``
   readings (+2% outbox entries), against raw ``sqlite3`` inserting the same rows with the
   same number of commits (= fsyncs); and a 10,000-device checkpoint: full write, incremental
   write (1% changed) and the startup load.

A private redis-server is started on a free port (``tests.services.RedisServer``: append-only
file, ``everysec``), and with ``--cluster`` a private 3-node Redis Cluster.

Usage: ``python bench/bench_state.py [--quick] [--repeats N] [--ops N] [--writes N]
[--batch N] [--cluster]``
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis.asyncio as aioredis  # noqa: E402
from _report import Measurement, header, machine, measure, row  # noqa: E402

from gateway.config import RedisConfig  # noqa: E402
from gateway.state import (  # noqa: E402
    JournalEntry,
    MemoryBackend,
    OutboxEntry,
    RedisBackend,
    SqliteBackend,
    SqliteGatewayStore,
    StateBackend,
    StatefulOperator,
)
from tests.services import RedisCluster, RedisServer, find_binary  # noqa: E402

GW = "bench-gw"


async def ameasure(
    name: str,
    fn: Callable[[], Awaitable[object]],
    *,
    items: int,
    repeats: int,
    setup: Callable[[], Awaitable[object]] | None = None,
) -> Measurement:
    """The asyncio twin of ``_report.measure``; ``setup`` runs untimed before each repeat."""
    rates = []
    result: object = None
    for _ in range(repeats):
        if setup is not None:
            await setup()
        gc.collect()
        start = time.perf_counter()
        result = await fn()
        rates.append(items / (time.perf_counter() - start))
    return Measurement(name, tuple(rates), result)


def value_for(i: int, r: int) -> dict[str, float | int]:
    return {"sum": 21.5 * i + r, "n": 3, "min": 20.0, "max": 22.5}


# -- 1. hot path ---------------------------------------------------------------------------


async def bench_hot_path(ops: int, repeats: int, backends: dict[str, StateBackend]) -> None:
    """Synchronous loops, run inside the event loop (they block it, as the actor path would)."""
    keys = [f"device-{i % 10_000}" for i in range(ops // 2)]
    values = [value_for(i, 0) for i in range(10_000)]

    def plain_dict() -> int:
        d: dict[str, object] = {}
        hits = 0
        for i, k in enumerate(keys):
            d[k] = values[i % 10_000]
            if d.get(k) is not None:
                hits += 1
        return hits

    ceiling = measure("plain dict (store + lookup)", plain_dict, items=ops, repeats=repeats)
    rows = [ceiling]
    for kind, backend in backends.items():
        async with StatefulOperator(backend, f"hot-{kind}", flush_interval=3_600_000) as op:

            def operator_path(op: StatefulOperator = op) -> int:
                hits = 0
                put, get = op.put, op.get
                for i, k in enumerate(keys):
                    put(k, values[i % 10_000])
                    if get(k) is not None:
                        hits += 1
                return hits

            name = f"StatefulOperator put+get ({kind})"
            rows.append(measure(name, operator_path, items=ops, repeats=repeats))
            await op.flush()
    print("### 1. Operator hot path (ops/s)\n")
    print(header("ops/s"))
    for m in rows:
        print(row(m, ceiling))
    print()


# -- 2. durable writes ---------------------------------------------------------------------


def sqlite_ceiling(path: Path, n: int, repeats: int) -> Measurement:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS kv(ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
        " expires_at INTEGER, PRIMARY KEY(ns, key))"
    )
    counter = iter(range(10**9))

    def upserts() -> int:
        r = next(counter)
        rows = [
            ("ceil", f"k{i}", json.dumps(value_for(i, r), separators=(",", ":")).encode(), None)
            for i in range(n)
        ]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO kv VALUES (?, ?, ?, ?) ON CONFLICT(ns, key) DO UPDATE SET "
            "value = excluded.value, expires_at = excluded.expires_at",
            rows,
        )
        conn.execute("COMMIT")
        return n

    try:
        return measure("raw sqlite3 batched upserts (WAL, FULL)", upserts, items=n, repeats=repeats)
    finally:
        conn.close()


async def redis_pipeline_ceiling(
    client: aioredis.Redis | aioredis.RedisCluster, n: int, repeats: int, label: str
) -> Measurement:
    counter = iter(range(10**9))

    async def pipelined_sets() -> int:
        r = next(counter)
        pending = [
            (f"bench:{{{GW}}}:ceil:k{i}", json.dumps(value_for(i, r), separators=(",", ":")))
            for i in range(n)
        ]
        for start in range(0, n, 10_000):
            async with client.pipeline(transaction=False) as pipe:
                for key, value in pending[start : start + 10_000]:
                    pipe.set(key, value)
                await pipe.execute()
        return n

    return await ameasure(
        f"bare redis-py pipelined SET loop ({label})", pipelined_sets, items=n, repeats=repeats
    )


async def operator_durable(
    backend: StateBackend, kind: str, n: int, repeats: int, ttl: int | None = None
) -> Measurement:
    suffix = "" if ttl is None else ", with TTL"
    async with StatefulOperator(backend, f"durable-{kind}", flush_interval=3_600_000) as op:
        counter = iter(range(10**9))

        async def put_and_flush() -> int:
            r = next(counter)
            for i in range(n):
                op.put(f"k{i}", value_for(i, r), ttl=ttl)
            return await op.flush()

        return await ameasure(
            f"StatefulOperator put + flush ({kind}{suffix})",
            put_and_flush,
            items=n,
            repeats=repeats,
        )


def redis_benchmark(port: int, n: int) -> Measurement | None:
    try:
        binary = find_binary("redis-benchmark")
    except Exception:
        return None
    out = subprocess.run(
        [binary, "-p", str(port), "-P", "32", "-t", "set", "-n", str(n), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    ).stdout
    found = re.findall(r"SET: ([\d.]+) requests per second", out)
    if not found:
        return None
    rate = float(found[-1])
    return Measurement("redis-benchmark -P 32 -t set (C client, for scale)", (rate,))


# -- 3. gateway store ----------------------------------------------------------------------


def store_ceiling(path: Path, readings: int, batch: int, repeats: int) -> Measurement:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS journal(seq INTEGER PRIMARY KEY, device TEXT, sensor TEXT,"
        " value REAL, timestamp INTEGER, arrival INTEGER, historical INTEGER)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY, kind TEXT, dedupe_key TEXT"
        " UNIQUE, payload BLOB, created_at INTEGER)"
    )
    seq = iter(range(1, 10**12))

    def inserts() -> int:
        for start in range(0, readings, batch):
            rows = [
                (next(seq), f"d{i % 1000}", "temperature", 21.5, 1_764_300_000_000 + i, 0, 0)
                for i in range(start, min(readings, start + batch))
            ]
            out = [
                ("window", f"w{r[0]}", b'{"mean":21.5}' * 8, 0)
                for r in rows[: max(1, len(rows) // 50)]
            ]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            conn.executemany(
                "INSERT OR IGNORE INTO outbox(kind, dedupe_key, payload, created_at) "
                "VALUES (?, ?, ?, ?)",
                out,
            )
            conn.execute("COMMIT")
        return readings

    try:
        return measure(
            f"raw sqlite3 inserts, {batch} per commit (FULL)",
            inserts,
            items=readings,
            repeats=repeats,
        )
    finally:
        conn.close()


async def bench_store(work: Path, readings: int, batch: int, repeats: int) -> None:
    ceiling = store_ceiling(work / "store-ceiling.db", readings, batch, repeats)
    counter = iter(range(10**9))
    async with SqliteGatewayStore(work / "store.db", now_ms=lambda: 1) as store:

        async def commits() -> int:
            r = next(counter)
            for start in range(0, readings, batch):
                journal = [
                    JournalEntry(0, f"d{i % 1000}", "temperature", 21.5, 1_764_300_000_000 + i, 0)
                    for i in range(start, min(readings, start + batch))
                ]
                outbox = [
                    OutboxEntry(0, "window", f"w{r}-{start}-{j}", b'{"mean":21.5}' * 8, 0)
                    for j in range(max(1, len(journal) // 50))
                ]
                await store.commit_batch(journal, outbox)
            return readings

        ours = await ameasure(
            f"GatewayStore.commit_batch, {batch} per batch",
            commits,
            items=readings,
            repeats=repeats,
        )

        devices = 10_000
        snaps = {
            f"device-{i:05d}": {
                "watermark": 1_764_300_000_000 + i,
                "windows": [{"start": 1, "count": 3, "sum": 61.5, "min": 20.0, "max": 21.5}],
                "detectors": {"zscore": {"n": 120, "mean": 20.5, "m2": 3.25}},
                "pad": "x" * 300,
            }
            for i in range(devices)
        }
        seq = store.next_seq - 1
        t0 = time.perf_counter()
        await store.write_checkpoint(snaps, seq)
        full = time.perf_counter() - t0
        rng = random.Random(1)
        changed = {
            key: {**snaps[key], "watermark": 0}
            for key in rng.sample(sorted(snaps), devices // 100)
        }
        t0 = time.perf_counter()
        await store.write_checkpoint(changed, seq)
        incremental = time.perf_counter() - t0
    t0 = time.perf_counter()
    async with SqliteGatewayStore(work / "store.db", now_ms=lambda: 1) as store:
        loaded = await store.load_checkpoint()
    load = time.perf_counter() - t0
    assert loaded is not None
    assert len(loaded.snapshots) == devices
    print("### 3. Gateway store, SQLite (readings/s, durable on return)\n")
    print(header("readings/s"))
    print(row(ceiling, ceiling))
    print(row(ours, ceiling))
    print()
    print(
        f"Checkpoint of {devices:,} devices: full write {full * 1000:.0f} ms, incremental "
        f"(1% changed) {incremental * 1000:.0f} ms, open + load at startup {load * 1000:.0f} ms"
    )
    print()


# -- main ----------------------------------------------------------------------------------


async def bench_durable(
    work: Path,
    writes: int,
    repeats: int,
    redis_cfg: RedisConfig,
    cluster_cfg: RedisConfig | None,
    port: int,
) -> None:
    rows: list[tuple[Measurement, Measurement | None]] = []
    async with MemoryBackend() as memory:
        rows.append((await operator_durable(memory, "memory", writes, repeats), None))
    sql_ceiling = sqlite_ceiling(work / "ceiling.db", writes, repeats)
    rows.append((sql_ceiling, sql_ceiling))
    async with SqliteBackend(work / "state.db") as sqlite_backend:
        rows.append(
            (await operator_durable(sqlite_backend, "sqlite", writes, repeats), sql_ceiling)
        )
        rows.append(
            (await operator_durable(sqlite_backend, "sqlite", writes, repeats, 60_000), sql_ceiling)
        )
    async with RedisBackend(redis_cfg, GW) as redis_backend:
        bare = await redis_pipeline_ceiling(redis_backend.client, writes, repeats, "single")
        rows.append((bare, bare))
        rows.append((await operator_durable(redis_backend, "redis", writes, repeats), bare))
        rows.append((await operator_durable(redis_backend, "redis", writes, repeats, 60_000), bare))
    if cluster_cfg is not None:
        async with RedisBackend(cluster_cfg, GW) as cluster_backend:
            bare_c = await redis_pipeline_ceiling(
                cluster_backend.client, writes, repeats, "cluster, one slot"
            )
            rows.append((bare_c, bare_c))
            rows.append(
                (await operator_durable(cluster_backend, "redis cluster", writes, repeats), bare_c)
            )
    scale = redis_benchmark(port, 1_000_000)
    print("### 2. Durable writes (writes/s)\n")
    print(header("writes/s"))
    for m, ceiling in rows:
        print(row(m, ceiling))
    if scale is not None:
        print(row(scale))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ops", type=int, default=2_000_000, help="hot-path operations")
    parser.add_argument("--writes", type=int, default=100_000, help="durable writes per repeat")
    parser.add_argument("--readings", type=int, default=200_000, help="store readings")
    parser.add_argument("--batch", type=int, default=500, help="readings per group commit")
    parser.add_argument("--cluster", action="store_true", help="also a 3-node Redis Cluster")
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where a run is stuck
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers are stopped
    if args.quick:
        args.repeats, args.ops, args.writes, args.readings = 3, 400_000, 20_000, 40_000

    with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp:
        work = Path(tmp)
        server = RedisServer(work / "redis")
        cluster = RedisCluster(work / "cluster") if args.cluster else None
        server.start()
        try:
            if cluster is not None:
                rng = random.Random()
                for node in cluster.nodes:  # the cluster bus needs port + 10000 <= 65535
                    node.port = rng.randint(20_000, 55_000)
                cluster.start()
            redis_cfg = RedisConfig(url=server.url)
            cluster_cfg = None if cluster is None else RedisConfig(url=cluster.url, cluster=True)
            version = server.cli("INFO", "server").split("redis_version:")[1].split()[0]
            print("## bench_state\n")
            print(
                f"{machine()}; redis-server {version} (appendonly yes, everysec); "
                f"sqlite {sqlite3.sqlite_version}; repeats {args.repeats}\n"
            )

            async def open_backends() -> None:
                async with (
                    MemoryBackend() as memory,
                    SqliteBackend(work / "hot.db") as lite,
                    RedisBackend(redis_cfg, GW) as remote,
                ):
                    await bench_hot_path(
                        args.ops, args.repeats, {"memory": memory, "sqlite": lite, "redis": remote}
                    )

            asyncio.run(open_backends())
            asyncio.run(
                bench_durable(work, args.writes, args.repeats, redis_cfg, cluster_cfg, server.port)
            )
            asyncio.run(bench_store(work, args.readings, args.batch, args.repeats))
        finally:
            server.kill()
            if cluster is not None:
                cluster.kill()


if __name__ == "__main__":
    main()
