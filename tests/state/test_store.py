"""The gateway store's contract, on every backend: journal, checkpoints, parked devices,
outbox with cursors, dedupe and quota."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gateway.config import config_from_dict
from gateway.state import (
    ROW_OVERHEAD_BYTES,
    GatewayStore,
    JournalEntry,
    OutboxEntry,
    SqliteGatewayStore,
    StateUsageError,
    open_store,
)
from tests.state.conftest import FakeClock, StoreFactory


def reading(device: str, value: float, ts: int = 1000) -> JournalEntry:
    return JournalEntry(0, device, "temperature", value, ts, ts + 5)


def out(key: str, kind: str = "window", payload: bytes = b"{}") -> OutboxEntry:
    return OutboxEntry(0, kind, key, payload, 1)  # type: ignore[arg-type]


def needs_durable(store_kind: str) -> None:
    if store_kind == "memory":
        pytest.skip("the memory store keeps nothing across a reopen")


async def journal(store: GatewayStore, after: int = 0) -> list[JournalEntry]:
    return [e async for e in store.replay_journal(after)]


async def test_commit_assigns_consecutive_seqs_and_replays_in_order(store: GatewayStore) -> None:
    assert store.next_seq == 1
    await store.commit_batch([reading("d1", 1.0), reading("d2", 2.0)], [])
    await store.commit_batch([reading("d1", 3.0, ts=2000)], [])
    assert store.next_seq == 4
    entries = await journal(store)
    assert [(e.seq, e.device, e.value) for e in entries] == [
        (1, "d1", 1.0),
        (2, "d2", 2.0),
        (3, "d1", 3.0),
    ]
    assert entries[2].timestamp == 2000
    assert entries[2].arrival == 2005
    assert [e.seq for e in await journal(store, after=2)] == [3]


async def test_seqs_survive_a_restart(make_store: StoreFactory, store_kind: str) -> None:
    needs_durable(store_kind)
    async with make_store() as store:
        await store.commit_batch([reading("d1", 1.0)] * 3, [])
        await store.write_checkpoint({"d1": {"n": 3}}, journal_seq=3)
    async with make_store() as store:
        assert store.next_seq == 4  # journal pruned, checkpoint remembers
        await store.commit_batch([reading("d1", 1.0)], [])
        assert [e.seq for e in await journal(store)] == [4]


async def test_checkpoint_round_trip_and_prune(store: GatewayStore, clock: FakeClock) -> None:
    assert await store.load_checkpoint() is None
    await store.commit_batch([reading("d1", v) for v in range(5)], [])
    snaps = {"d1": {"sum": 10.0, "inf": math.inf, "list": [1, 2]}, "d2": [1, "x", None]}
    clock.advance(7)
    cid = await store.write_checkpoint(snaps, journal_seq=3)
    loaded = await store.load_checkpoint()
    assert loaded is not None
    assert (loaded.id, loaded.journal_seq, loaded.created_at) == (cid, 3, clock.now)
    assert loaded.snapshots == snaps
    assert [e.seq for e in await journal(store)] == [4, 5]  # journal <= 3 pruned


async def test_incremental_checkpoints_keep_removals_and_older_keys(
    make_store: StoreFactory,
) -> None:
    async with make_store(keep_checkpoints=2) as store:
        await store.commit_batch([reading("d", 1.0)] * 10, [])
        # (changed, removed) per checkpoint -> every key's state after it
        steps: list[tuple[dict[str, int], list[str], dict[str, int]]] = [
            ({"a": 1, "b": 1, "c": 1}, [], {"a": 1, "b": 1, "c": 1}),
            ({"a": 2}, [], {"a": 2, "b": 1, "c": 1}),
            ({"c": 2}, ["b"], {"a": 2, "c": 2}),  # b removed
            ({"a": 3, "b": 5}, [], {"a": 3, "c": 2, "b": 5}),  # b back
            ({}, ["a", "b", "never-there"], {"c": 2}),
            ({}, [], {"c": 2}),  # nothing changed: still a checkpoint, at a later position
        ]
        for i, (changed, removed, state) in enumerate(steps, start=1):
            await store.write_checkpoint(changed, journal_seq=i, removed=removed)
            loaded = await store.load_checkpoint()
            assert loaded is not None
            assert (loaded.snapshots, loaded.journal_seq) == (state, i), i
            for key in ("a", "b", "c", "never-there"):
                assert await store.load_checkpointed(key) == state.get(key), (i, key)


async def test_one_checkpointed_key_is_read_back_alone(
    make_store: StoreFactory, store_kind: str
) -> None:
    async with make_store(keep_checkpoints=1) as store:
        assert await store.load_checkpointed("d1") is None
        await store.commit_batch([reading("d", 1.0)] * 4, [])
        await store.write_checkpoint({"d1": {"n": 1}, "d2": {"n": 1}}, journal_seq=1)
        await store.write_checkpoint({"d2": {"n": 2}}, journal_seq=2)
        await store.write_checkpoint({"d3": {"n": 3}}, journal_seq=3)  # prunes the first two
        assert await store.load_checkpointed("d1") == {"n": 1}  # its base, kept by the prune
        assert await store.load_checkpointed("d2") == {"n": 2}
        await store.put_snapshot("d4", {"parked": True})  # parked is not checkpointed
        assert await store.load_checkpointed("d4") is None
    if store_kind == "memory":
        return
    async with make_store(keep_checkpoints=1) as store:  # no load_checkpoint first
        assert await store.load_checkpointed("d1") == {"n": 1}
        assert await store.load_checkpointed("d3") == {"n": 3}


async def test_incremental_checkpoint_after_reopen(
    make_store: StoreFactory, store_kind: str
) -> None:
    needs_durable(store_kind)
    async with make_store(keep_checkpoints=1) as store:
        await store.commit_batch([reading("d", 1.0)] * 3, [])
        await store.write_checkpoint({"a": 1, "b": 2}, journal_seq=1)
    async with make_store(keep_checkpoints=1) as store:
        # no load_checkpoint first: the store applies the change to what is stored
        await store.write_checkpoint({"c": 3}, journal_seq=2, removed=["b"])
        loaded = await store.load_checkpoint()
        assert loaded is not None
        assert loaded.snapshots == {"a": 1, "c": 3}
    async with make_store(keep_checkpoints=1) as store:
        loaded = await store.load_checkpoint()
        assert loaded is not None
        assert loaded.snapshots == {"a": 1, "c": 3}
        assert loaded.journal_seq == 2


async def test_a_refused_checkpoint_stores_nothing(store: GatewayStore) -> None:
    await store.commit_batch([reading("d", 1.0)] * 3, [])
    await store.write_checkpoint({"a": 1, "b": 1}, journal_seq=1)
    with pytest.raises(StateUsageError, match=r"both change and remove 'b'"):
        await store.write_checkpoint({"a": 2, "b": 2}, journal_seq=2, removed=["b"])
    with pytest.raises(StateUsageError, match=r"'c'.*JSON"):
        await store.write_checkpoint({"a": 2, "c": {1, 2}}, journal_seq=2, removed=["b"])
    loaded = await store.load_checkpoint()
    assert loaded is not None
    assert (loaded.snapshots, loaded.journal_seq) == ({"a": 1, "b": 1}, 1)
    assert [e.seq for e in await journal(store)] == [2, 3]


async def test_checkpoint_rejects_unknown_position_and_bad_values(store: GatewayStore) -> None:
    with pytest.raises(StateUsageError, match="beyond the journal"):
        await store.write_checkpoint({}, journal_seq=5)
    await store.commit_batch([reading("d", 1.0)], [])
    with pytest.raises(StateUsageError, match=r"'d1'.*JSON"):
        await store.write_checkpoint({"d1": {1, 2}}, journal_seq=1)


async def test_parked_snapshots(store: GatewayStore) -> None:
    assert await store.get_snapshot("d9") is None
    await store.put_snapshot("d9", {"w": [1.5, 2.5]})
    assert await store.get_snapshot("d9") == {"w": [1.5, 2.5]}
    await store.put_snapshot("d9", {"w": []})
    assert await store.get_snapshot("d9") == {"w": []}
    await store.delete_snapshot("d9")
    await store.delete_snapshot("d9")
    assert await store.get_snapshot("d9") is None


async def test_outbox_dedupes_within_and_across_batches(store: GatewayStore) -> None:
    store.register_cursor("redis")
    await store.commit_batch([], [out("w1"), out("w2"), out("w1")])
    await store.commit_batch([], [out("w2"), out("w3")])
    entries = await store.outbox_read("redis", 10)
    assert [e.dedupe_key for e in entries] == ["w1", "w2", "w3"]
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    # delivered entries are remembered: a replay before the next checkpoint adds nothing
    await store.outbox_ack("redis", entries[-1].id)
    await store.commit_batch([], [out("w1"), out("w3")])
    assert await store.outbox_read("redis", 10) == []
    stats = await store.outbox_stats()
    assert (stats.rows, stats.bytes, stats.oldest_created_at) == (0, 0, None)


async def test_cursors_hold_rows_until_every_registered_one_passes(store: GatewayStore) -> None:
    store.register_cursor("redis")
    store.register_cursor("forward.mqtt")
    await store.commit_batch([], [out(f"k{i}", payload=b"x" * 10) for i in range(5)])
    ids = [e.id for e in await store.outbox_read("redis", 10)]
    await store.outbox_ack("redis", ids[2])
    assert [e.id for e in await store.outbox_read("redis", 10)] == ids[3:]
    assert [e.id for e in await store.outbox_read("forward.mqtt", 2)] == ids[:2]
    assert (await store.outbox_stats()).rows == 5  # mqtt has not passed any
    await store.outbox_ack("forward.mqtt", ids[1])
    stats = await store.outbox_stats()
    assert stats.rows == 3
    assert stats.bytes == 3 * (10 + 2 + ROW_OVERHEAD_BYTES)
    await store.outbox_ack("forward.mqtt", ids[0])  # never backwards
    assert [e.id for e in await store.outbox_read("forward.mqtt", 10)] == ids[2:]
    with pytest.raises(StateUsageError, match="not registered"):
        await store.outbox_read("webhook", 10)


async def test_delivered_outputs_a_restart_could_make_again_stay_deduped(
    store: GatewayStore,
) -> None:
    store.register_cursor("redis")
    await store.commit_batch([reading("d1", 1.0), reading("d1", 2.0)], [out("before")])
    await store.write_checkpoint({"d1": {"n": 2}}, journal_seq=2)
    await store.commit_batch([], [out("timer")])  # after the checkpoint, at its position
    await store.commit_batch([reading("d1", 3.0)], [out("after")])
    pending = await store.outbox_read("redis", 10)
    assert [e.dedupe_key for e in pending] == ["before", "timer", "after"]
    await store.outbox_ack("redis", pending[-1].id)
    # A restart from the checkpoint replays seq 3 and fires the timer again: both ignored.
    await store.commit_batch([reading("d1", 3.0)], [out("timer"), out("after")])
    assert await store.outbox_read("redis", 10) == []
    assert (await store.outbox_stats()).rows == 0


async def test_cursor_positions_survive_a_restart(
    make_store: StoreFactory, store_kind: str
) -> None:
    needs_durable(store_kind)
    async with make_store() as store:
        store.register_cursor("redis")
        await store.commit_batch([], [out(f"k{i}") for i in range(4)])
        ids = [e.id for e in await store.outbox_read("redis", 10)]
        await store.outbox_ack("redis", ids[1])
    async with make_store() as store:
        store.register_cursor("redis")
        assert [e.id for e in await store.outbox_read("redis", 10)] == ids[2:]
        assert (await store.outbox_stats()).rows == 2
        await store.commit_batch([], [out("k9")])
        assert (await store.outbox_read("redis", 10))[-1].id > ids[-1]  # ids never reused


async def test_quota_drops_oldest_non_alerts_first_then_alerts(make_store: StoreFactory) -> None:
    size = 100 + 2 + ROW_OVERHEAD_BYTES  # payload + key "w0".."w9" / "a0".. + overhead
    async with make_store(max_outbox_bytes=10 * size) as store:
        store.register_cursor("redis")
        batch = [out(f"a{i}", "alert", b"a" * 100) for i in range(3)]
        batch += [out(f"w{i}", "window", b"w" * 100) for i in range(7)]
        await store.commit_batch([], batch)
        assert (await store.outbox_stats()).dropped_windows == 0  # exactly at the quota
        await store.commit_batch([], [out("l0", "late", b"l" * 100)])
        stats = await store.outbox_stats()
        keys = [e.dedupe_key for e in await store.outbox_read("redis", 100)]
        # over by one row: the oldest non-alerts go (down to 95% of the quota)
        assert keys == ["a0", "a1", "a2", "w2", "w3", "w4", "w5", "w6", "l0"]
        assert (stats.dropped_windows, stats.dropped_alerts) == (2, 0)
        assert stats.bytes == 9 * size <= 10 * size
        # only alerts left: then the oldest alerts go
        await store.commit_batch([], [out(f"b{i}", "alert", b"b" * 100) for i in range(8)])
        stats = await store.outbox_stats()
        keys = [e.dedupe_key for e in await store.outbox_read("redis", 100)]
        assert all(k.startswith(("a", "b")) for k in keys), keys
        assert keys[-1] == "b7"
        assert stats.dropped_windows == 8
        assert stats.dropped_alerts > 0
        assert stats.bytes <= 10 * size
        # a dropped entry is not brought back by a replay
        await store.commit_batch([], [out("w0", "window", b"w" * 100)])
        assert "w0" not in [e.dedupe_key for e in await store.outbox_read("redis", 100)]


async def test_drop_counters_survive_a_restart(make_store: StoreFactory, store_kind: str) -> None:
    needs_durable(store_kind)
    size = 10 + 2 + ROW_OVERHEAD_BYTES
    async with make_store(max_outbox_bytes=3 * size) as store:
        await store.commit_batch([], [out(f"w{i}", payload=b"x" * 10) for i in range(5)])
        before = await store.outbox_stats()
    async with make_store(max_outbox_bytes=3 * size) as store:
        after = await store.outbox_stats()
    assert before.dropped_windows == after.dropped_windows > 0
    assert (before.rows, before.bytes) == (after.rows, after.bytes)


async def test_epoch_is_made_once_and_kept_across_restarts(
    make_store: StoreFactory, store_kind: str
) -> None:
    store = make_store()
    with pytest.raises(StateUsageError, match="inside `async with`"):
        _ = store.epoch
    async with store:
        epoch = store.epoch
        assert epoch not in ("", "0")
        store.register_cursor("redis")
        await store.commit_batch([reading("d1", 1.0)], [out("k1")])
        await store.outbox_ack("redis", (await store.outbox_read("redis", 1))[0].id)
        assert store.epoch == epoch
    async with make_store() as again:
        if store_kind == "memory":
            assert again.epoch != epoch  # nothing survived, ids start at 1 again
        else:
            assert again.epoch == epoch


async def test_storage_used_before_epochs_keeps_epoch_zero(
    make_store: StoreFactory, store_kind: str, tmp_path: Path
) -> None:
    """The Redis sink's mark was ``applied:0`` for every store before epochs: storage already
    in use must keep that epoch, or entries applied but not yet acknowledged would be sent
    again under a new mark and written twice."""
    needs_durable(store_kind)
    async with make_store() as store:
        await store.commit_batch([reading("d1", 1.0)], [out("k1")])
        if isinstance(store, SqliteGatewayStore):
            await store._conn.execute("DELETE FROM counters WHERE name = 'outbox_epoch'")
        else:
            from gateway.state._redis_store import RedisGatewayStore

            assert isinstance(store, RedisGatewayStore)
            await store._redis.hdel(store._meta, "epoch")
    for _ in range(2):
        async with make_store() as store:
            assert store.epoch == "0"


async def test_lifecycle_is_enforced(make_store: StoreFactory) -> None:
    store = make_store()
    with pytest.raises(StateUsageError, match="inside `async with`"):
        await store.commit_batch([reading("d", 1.0)], [])
    async with store:
        with pytest.raises(StateUsageError, match="not re-entrant"):
            await store.__aenter__()
    with pytest.raises(StateUsageError, match="closed"):
        await store.load_checkpoint()
    with pytest.raises(StateUsageError, match="not reusable"):
        await store.__aenter__()


async def test_open_store_follows_the_config(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {
            "gateway_id": "gw1",
            "state": {"backend": "sqlite", "path": str(tmp_path / "s.db")},
            "sensors": [{"name": "t", "topic": "site/+/t"}],
        }
    )
    async with open_store(cfg) as store:
        assert isinstance(store, SqliteGatewayStore)
        await store.commit_batch([reading("d", 1.0)], [])
    assert (tmp_path / "s.db").exists()


async def test_redis_commit_retried_after_a_lost_reply_adds_nothing(
    store: GatewayStore, store_kind: str
) -> None:
    if not store_kind.startswith("redis"):
        pytest.skip("Redis-specific: the client may resend a script whose reply was lost")
    from gateway.state._redis_store import RedisGatewayStore

    assert isinstance(store, RedisGatewayStore)
    batch = [reading("d1", 1.0), reading("d1", 2.0)]
    before = store.next_seq
    await store.commit_batch(batch, [out("w1")])
    # resend the very same call, as redis-py's retry would after a dropped connection
    store._next_seq = before
    await store.commit_batch(batch, [out("w1")])
    assert store.next_seq == before + 2
    assert [e.seq for e in await journal(store)] == [before, before + 1]
