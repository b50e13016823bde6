"""A barrage of bad messages through the real broker while good devices keep flowing: the
good windows are exact and every bad message is counted under its reason."""

from __future__ import annotations

import time
from pathlib import Path

from tests.gateway_runner import gateway_config, running_gateway
from tests.mqtt_tools import collector, publisher
from tests.services import Mosquitto

SIZE = 10_000
YEAR_2100_MS = 4_102_444_800_000


def _bad_messages(base: int) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason code)."""
    t = "site/bad/temperature"
    deep = b"[" * 100 + b"]" * 100
    many_keys = b"{" + b",".join(b'"k%d":1' % i for i in range(100_000)) + b',"temp":1}'
    return [
        (t, b"\xff\xfe\x00garbage", "decode"),  # not UTF-8
        (t, b"not json", "decode"),
        (t, b'{"temp": 1.5, "ts": ', "decode"),  # truncated
        (t, deep, "decode"),  # nested too deep
        (t, b"x" * 70_000, "too_large"),
        (t, many_keys, "too_large"),  # 100,000 keys: over 64 KiB, refused unparsed
        (t, b'{"ts": 1}', "decode"),  # missing value
        (t, b'{"temp": true}', "decode"),  # boolean
        (t, b'{"temp": "21.5"}', "decode"),  # string
        (t, b'{"temp": NaN}', "decode"),
        (t, b'{"temp": Infinity}', "decode"),
        (t, b'{"temp": 1e999}', "decode"),  # overflows to inf
        (t, b'{"temp": 1, "ts": -5}', "decode"),  # negative time
        (t, b'{"temp": 1, "ts": "yesterday"}', "decode"),
        (t, b'{"temp": 1, "ts": %d}' % YEAR_2100_MS, "future"),
        (t, b'{"temp": 1, "ts": 1000}', "too_old"),  # 1970
        ("site/good/temperature", b'{"temp": 99, "ts": %d}' % YEAR_2100_MS, "future"),
        ("site//temperature", b'{"temp": 1, "ts": %d}' % (base + 1), "bad_device"),
        ("site/" + "d" * 300 + "/temperature", b'{"temp": 1}', "bad_device"),
    ]


async def test_bad_input_is_counted_by_reason_and_good_devices_are_exact(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    base = (time.time_ns() // 1_000_000 - 3_600_000) // SIZE * SIZE
    config = gateway_config(mosquitto.port, tmp_path / "s.db",
                            limits={"max_rate_per_device": 20.0, "deadletter_per_s": 1000.0})
    bad = _bad_messages(base)
    flood = 200
    async with running_gateway(config) as gateway:
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/#") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for i in range(10):
                    for device in ("good", "other"):
                        pub.send(f"site/{device}/temperature",
                                 {"temp": float(i), "ts": base + 500 * i})
                    for topic, payload, _ in bad[i::10]:
                        pub.send(topic, payload)
                for i in range(flood):  # one device far over its rate
                    pub.send("site/flood/temperature", {"temp": 1.0, "ts": base + i}, qos=0)
                for device in ("good", "other"):
                    pub.send(f"site/{device}/temperature", {"temp": 0.0, "ts": base + SIZE + 6_000})
            await out.until(lambda c: len(c.json("/windows/")) >= 2, what="good windows")
            sent = 22 + len(bad) + flood
            await out.until(lambda _: gateway.mqtt is not None
                            and gateway.mqtt.stats.messages >= sent, what="every message")
            await out.until(lambda c: len(c.json("/deadletter")) >= len(bad), what="dead letters")
        rejects = dict(gateway.intake.rejects.by_reason)
        by_device = {d: dict(r) for d, r in gateway.intake.rejects.by_device.items()}
    windows = {w["device"]: w for w in out.json("/windows/")}
    for device in ("good", "other"):
        assert (windows[device]["count"], windows[device]["sum"]) == (10, 45.0)
        assert windows[device]["window_start"] == base
    expected: dict[str, int] = {}
    for _, _, code in bad:
        expected[code] = expected.get(code, 0) + 1
    flooded = rejects.pop("rate_limited", 0)
    assert rejects == expected
    assert flooded >= flood - 60  # a burst of 20 plus what refills while sending
    assert by_device["good"] == {"future": 1}
    dead = out.json("/deadletter")
    assert all(d["reason"] and d["code"] for d in dead)
    assert sum(1 for d in dead if d["code"] != "rate_limited") == len(bad)
    status = gateway.status()
    assert status["readings"]["rejected"] == len(bad) + flooded
