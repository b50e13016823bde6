"""RedisWriter against a real redis-server: idempotency, order, fields, partial failures."""

from __future__ import annotations

import orjson
import pytest

from gateway.state import SqliteGatewayStore
from gateway.state.redis_connect import AnyRedis
from gateway.sync import RedisWriter, SinkRefused
from tests.sync._support import GW, Entry, alert, decode_fields, device_summary, window


def writer(client: AnyRedis, epoch: str = "0", window_dedupe_keep: int = 0) -> RedisWriter:
    return RedisWriter(
        client,
        GW,
        target="test",
        windows_maxlen=100_000,
        outbox_epoch=epoch,
        window_dedupe_keep=window_dedupe_keep,
    )


async def committed(outbox: SqliteGatewayStore, *entries: Entry) -> list[Entry]:
    """Commit ``entries`` to the real store and read them back with their ids."""
    outbox.register_cursor("test")
    await outbox.commit_batch([], entries)
    return await outbox.outbox_read("test", len(entries))


async def test_same_batch_twice_gives_one_entry_each(
    client: AnyRedis, outbox: SqliteGatewayStore
) -> None:
    rows = await committed(
        outbox,
        window("d1", 0),
        alert("d1", 1),
        window("d2", 0),
        alert("d1", 1, "resolved"),
        device_summary("d1", 1_000, 21.5),
    )
    w = writer(client)
    first = await w.apply(rows)
    again = await w.apply(rows)
    assert (first.applied, first.skipped, first.high_water) == (5, 0, 5)
    assert (again.applied, again.skipped, again.high_water) == (0, 5, 5)
    assert await client.xlen(f"edge:{{{GW}}}:windows") == 2
    assert await client.xlen(f"edge:{{{GW}}}:alerts") == 2


async def test_stream_fields_are_the_mqtt_json_fields(
    client: AnyRedis, outbox: SqliteGatewayStore
) -> None:
    rows = await committed(outbox, window("d1", 10_000), alert("d1", 7))
    await writer(client).apply(rows)
    [(_, wfields)] = await client.xrange(f"edge:{{{GW}}}:windows")
    [(_, afields)] = await client.xrange(f"edge:{{{GW}}}:alerts")
    assert decode_fields(wfields) == orjson.loads(rows[0].payload)
    assert decode_fields(afields) == orjson.loads(rows[1].payload)
    # Same fields, same order as the JSON object.
    assert [k.decode() for k in wfields] == list(orjson.loads(rows[0].payload))


async def test_crash_after_apply_before_ack_resends_without_duplicates(
    client: AnyRedis, outbox: SqliteGatewayStore
) -> None:
    rows = await committed(outbox, *(window("d1", i * 10_000) for i in range(50)))
    # The process applied the first 30, crashed before the cursor moved, and on restart
    # sends everything from the cursor again.
    await writer(client).apply(rows[:30])
    result = await writer(client).apply(rows)
    assert (result.applied, result.skipped) == (20, 30)
    starts = [int(f[b"window_start"]) for _, f in await client.xrange(f"edge:{{{GW}}}:windows")]
    assert starts == [i * 10_000 for i in range(50)]


async def test_regenerated_output_with_a_new_outbox_id_is_not_duplicated(client: AnyRedis) -> None:
    # An outbox that re-inserts an output under a new id (the real store does not: it keeps
    # the dedupe keys since the newest checkpoint): alerts are always caught by alert_id|state,
    # windows when the window dedupe set is on.
    first = [window("d1", 0)._replace(id=1), alert("d1", 1)._replace(id=2)]
    await writer(client, window_dedupe_keep=1000).apply(first)
    again = [window("d9", 0), window("d1", 0), alert("d1", 1)]
    resend = [e._replace(id=101 + i) for i, e in enumerate(again)]
    result = await writer(client, window_dedupe_keep=1000).apply(resend)
    assert (result.applied, result.skipped) == (1, 2)
    assert await client.xlen(f"edge:{{{GW}}}:alerts") == 1
    # Without the window set, only the alert is caught.
    result = await writer(client).apply([e._replace(id=201 + i) for i, e in enumerate(again)])
    assert (result.applied, result.skipped) == (2, 1)
    assert await client.xlen(f"edge:{{{GW}}}:alerts") == 1


async def test_order_is_kept_per_device_and_device_hash_holds_the_latest(
    client: AnyRedis, outbox: SqliteGatewayStore
) -> None:
    entries = [window(f"d{i % 7}", (i // 7) * 10_000) for i in range(700)]
    rows = await committed(outbox, *entries)
    await writer(client).apply(rows)
    stream = await client.xrange(f"edge:{{{GW}}}:windows")
    assert len(stream) == 700
    for d in range(7):
        starts = [int(f[b"window_start"]) for _, f in stream if f[b"device"] == f"d{d}".encode()]
        assert starts == sorted(starts)
        assert len(starts) == 100
    latest = orjson.loads(await client.hget(f"edge:{{{GW}}}:device:d3", "window:temperature"))
    assert latest["window_start"] == 99 * 10_000


async def test_device_hash_tracks_active_alerts_and_summary(
    client: AnyRedis, outbox: SqliteGatewayStore
) -> None:
    rows = await committed(
        outbox,
        alert("d1", 1),
        alert("d1", 2),
        alert("d1", 1, "resolved"),
        device_summary("d1", 5_000, 22.25),
    )
    await writer(client).apply(rows)
    device = await client.hgetall(f"edge:{{{GW}}}:device:d1")
    assert device[b"active_alerts"] == b"1"
    assert [k for k in device if k.startswith(b"alert:")] == [
        f"alert:{GW}:d1:temperature:threshold:2".encode()
    ]
    assert device[b"last_seen"] == b"5000"
    assert device[b"value:temperature"] == b"22.25"
    assert orjson.loads(device[b"summary"])["device"] == "d1"


async def test_big_batch_is_pipelined_in_chunks_and_a_failure_keeps_order(
    client: AnyRedis, outbox: SqliteGatewayStore
) -> None:
    entries = [window(f"d{i % 3}", (i // 3) * 10_000) for i in range(2_400)]
    rows = await committed(outbox, *entries)
    # A key of the wrong type makes the newest d0 window of the first chunk (entry 999, whose
    # device hash is updated) fail inside the script.
    await client.set(f"edge:{{{GW}}}:device:d0", "not a hash")
    w = writer(client)
    with pytest.raises(SinkRefused, match="WRONGTYPE"):
        await w.apply(rows)
    # Its window went in (XADD first), nothing after it: the later chunks refused (GAP).
    assert await client.xlen(f"edge:{{{GW}}}:windows") == 1_000
    assert await w.high_water() == rows[999].id
    await client.delete(f"edge:{{{GW}}}:device:d0")
    result = await w.apply(rows)
    assert result.high_water == rows[-1].id
    stream = await client.xrange(f"edge:{{{GW}}}:windows")
    assert [(f[b"device"], int(f[b"window_start"])) for _, f in stream] == [
        (f"d{i % 3}".encode(), (i // 3) * 10_000) for i in range(2_400)
    ]


async def test_script_flushed_falls_back_to_eval(
    client: AnyRedis, outbox: SqliteGatewayStore
) -> None:
    rows = await committed(outbox, *(window("d1", i * 10_000) for i in range(2_500)))
    w = writer(client)
    await w.apply(rows[:10])
    await client.script_flush()
    await w.apply(rows)  # pipelined: 3 chunks, all NOSCRIPT
    await client.script_flush()
    await w.apply(rows[:1])
    assert await client.xlen(f"edge:{{{GW}}}:windows") == 2_500


async def test_heartbeat_goes_to_the_shared_gateways_hash(client: AnyRedis) -> None:
    await writer(client).heartbeat({"state": "online", "ts": 5})
    assert orjson.loads(await client.hget("edge:gateways", GW)) == {"state": "online", "ts": 5}


async def test_new_outbox_epoch_starts_a_new_high_water_mark(
    client: AnyRedis, outbox: SqliteGatewayStore
) -> None:
    rows = await committed(outbox, *(window("d1", i * 10_000) for i in range(5)))
    await writer(client, "file-1").apply(rows)
    # A replaced state file: ids start at 1 again.
    result = await writer(client, "file-2").apply([window("d1", 900_000)._replace(id=1)])
    assert result.applied == 1


async def test_late_readings_odd_payloads_and_the_windows_cap(client: AnyRedis) -> None:
    late = Entry(0, "late", "l|1", orjson.dumps({"device": "d1", "sensor": "t", "value": 1}), 5)
    odd = [
        Entry(0, "window", "w|bad", b"not json", 5),
        Entry(0, "window", "w|list", b"[1, 2]", 5),
        Entry(0, "device", "d|nodevice", b'{"ts": 5}', 5),
    ]
    entries = [late, *odd, *(window("d2", i * 1000) for i in range(3_000))]
    rows = [e._replace(id=i + 1) for i, e in enumerate(entries)]
    w = RedisWriter(client, GW, target="test", windows_maxlen=100)
    result = await w.apply(rows)
    # Odd payloads are passed over (they still move the mark), never block the outbox.
    assert result.high_water == rows[-1].id
    assert (result.applied, result.skipped) == (3_001, 3)
    device = await client.hgetall(f"edge:{{{GW}}}:device:d1")
    assert device[b"late"] == b"1"
    assert orjson.loads(device[b"late:t"])["value"] == 1
    # MAXLEN ~ 100: trimmed in whole macro nodes, so about 100, never thousands.
    assert 100 <= await client.xlen(f"edge:{{{GW}}}:windows") < 300
