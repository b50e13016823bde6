"""MQTT in → per-device event-time windows → MQTT out, through a real Mosquitto."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.gateway_runner import gateway_config, running_gateway
from tests.mqtt_tools import collector, publisher
from tests.services import Mosquitto

SIZE = 10_000


def _base() -> int:
    """A window-aligned event time an hour ago: inside [limits] max_age, never in the future."""
    now = time.time_ns() // 1_000_000
    return (now - 3_600_000) // SIZE * SIZE


def _windows(messages: list[dict[str, object]]) -> dict[tuple[object, object], dict[str, object]]:
    return {(m["device"], m["window_start"]): m for m in messages}


async def test_out_of_order_readings_of_two_devices_give_exact_windows(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    base = _base()
    config = gateway_config(mosquitto.port, tmp_path / "state.db")
    #   device a:  |1  2  3 ........|10 .. 20 ....|   (2 arrives after 3; 10s windows,
    #   device b:  |5 ..... 7 ......|      40 ....|    W = newest - 5s)
    #              base            +10s          +20s
    readings = [
        ("a", base + 1_000, 1.0), ("a", base + 3_000, 3.0), ("b", base + 500, 5.0),
        ("a", base + 2_000, 2.0),  # out of order, window still open: joins it
        ("b", base + 9_999, 7.0),  # last millisecond of [base, base+10s)
        ("a", base + 12_000, 10.0),  # W(a) = base+7s: nothing fires yet
        ("b", base + 15_000, 40.0),  # W(b) = base+10s >= end: b's first window fires
        ("a", base + 16_000, 20.0),  # W(a) = base+11s: a's first window fires
        ("a", base + 30_000, 0.0),  # W(a) = base+25s: a's second window fires
    ]
    async with running_gateway(config):
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/windows/#") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for device, ts, value in readings:
                    pub.send(f"site/{device}/temperature", {"temp": value, "ts": ts})
            await out.until(lambda c: len(c.json()) >= 3, what="three window results")
    windows = _windows(out.json())
    assert windows[("a", base)] == {
        "device": "a", "sensor": "temperature", "window_start": base,
        "window_end": base + SIZE, "count": 3, "sum": 6.0, "mean": 2.0, "min": 1.0,
        "max": 3.0, "revision": 0,
    }
    assert windows[("b", base)] == {
        "device": "b", "sensor": "temperature", "window_start": base,
        "window_end": base + SIZE, "count": 2, "sum": 12.0, "mean": 6.0, "min": 5.0,
        "max": 7.0, "revision": 0,
    }
    second = windows[("a", base + SIZE)]
    assert (second["count"], second["sum"], second["min"], second["max"]) == (2, 30.0, 10.0, 20.0)
    assert len(windows) == 3  # b's second window and a's third are still open


async def test_garbage_goes_to_deadletter_and_other_devices_carry_on(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    base = _base()
    config = gateway_config(mosquitto.port, tmp_path / "state.db")
    async with running_gateway(config) as gateway:
        with collector(mosquitto.host, mosquitto.port, "edge-gateway/gw-test/#") as out:
            with publisher(mosquitto.host, mosquitto.port) as pub:
                pub.send("site/good/temperature", {"temp": 1.0, "ts": base + 100})
                pub.send("site/bad/temperature", b"not json at all")
                pub.send("site/bad/temperature", {"ts": base + 200})  # no value field
                pub.send("site/bad/temperature", {"temp": "hot", "ts": base + 300})
                pub.send("site/good/temperature", {"temp": 3.0, "ts": base + 200})
                pub.send("site/good/temperature", {"temp": 0.0, "ts": base + 20_000})
            await out.until(lambda c: len(c.json("/deadletter")) >= 3, what="3 dead letters")
            await out.until(lambda c: len(c.json("/windows/")) >= 1, what="good device's window")
        assert gateway.counters.decode_errors == 3
    dead = out.json("/deadletter")
    reasons = [d["reason"] for d in dead]
    assert all(d["topic"] == "site/bad/temperature" and d["code"] == "decode" for d in dead)
    assert any("JSON" in r for r in reasons), reasons
    assert any("'temp'" in r and "missing" in r for r in reasons), reasons
    assert any("'temp'" in r and "string" in r for r in reasons), reasons
    (window,) = out.json("/windows/")
    assert (window["device"], window["count"], window["sum"]) == ("good", 2, 4.0)


def test_check_config_names_every_mistake(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        'gateway_id = "gw1"\n'
        "[mqtt]\nport = \"not-a-port\"\n"
        "[[sensors]]\nname = \"t\"\ntopic = \"site/+/t\"\nformat = \"json\"\nvalue = \"v\"\n"
        "colour = \"blue\"\n"
        "[sensors.window]\nsize = \"10 parsecs\"\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", "-c", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, lines
    assert any("mqtt.port" in line for line in lines)
    assert any("sensors[0].colour: unknown key" in line for line in lines)
    assert any("sensors[0].window.size" in line and "duration" in line for line in lines)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gateway_id = \n", "not valid TOML"),
        ('gateway_id = "x"\n', "sensors: required key is missing"),
    ],
)
def test_check_config_one_line_for_broken_files(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", "-c", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
