"""CSV replay: reading NAB-style files, scheduling, and publishing through a real broker."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices import replay, simulator
from devices.profiles import build_decoder
from devices.replay import Planned, Row, plan, read_series
from tests.services import Mosquitto, wait_for

NAB = """timestamp,value
2014-02-14 14:30:00,0.132
2014-02-14 14:35:00,0.134
2014-02-14 14:40:00,0.134
"""


def test_read_nab_file() -> None:
    assert list(read_series(NAB.splitlines())) == [
        Row(2, 1_392_388_200_000, 0.132),
        Row(3, 1_392_388_500_000, 0.134),
        Row(4, 1_392_388_800_000, 0.134),
    ]


def test_read_headerless_epoch_and_named_columns() -> None:
    assert list(read_series(["1700000000,1.5", "1700000000500,2"])) == [
        Row(1, 1_700_000_000_000, 1.5),
        Row(2, 1_700_000_000_500, 2.0),
    ]
    swapped = ["value,timestamp", "3.5,2024-01-01T00:00:00Z"]
    assert list(read_series(swapped)) == [Row(2, 1_704_067_200_000, 3.5)]


def test_bad_rows_are_skipped_and_described() -> None:
    problems: list[str] = []
    lines = [*NAB.splitlines(), "yesterday,1", "2014-02-14 14:45:00,NaN", "2014-02-14 14:50:00"]
    rows = list(read_series(lines, problems))
    assert len(rows) == 3
    assert problems == [
        "line 5: timestamp: expected epoch time or ISO 8601, got 'yesterday'",
        "line 6: value: expected a decimal number, got 'NaN'",
        "line 7: expected at least 2 columns, got 1",
    ]


def test_plan_shifts_to_now_and_scales_time() -> None:
    rows = list(read_series(NAB.splitlines()))
    now = 1_764_300_000_000
    assert list(plan(rows, now_ms=now, speed=60.0, keep_timestamps=False)) == [
        Planned(0, now, 0.132),
        Planned(5_000, now + 300_000, 0.134),
        Planned(10_000, now + 600_000, 0.134),
    ]
    kept = list(plan(rows, now_ms=now, speed=0, keep_timestamps=True))
    assert [(p.send_ms, p.event_ms) for p in kept] == [
        (0, 1_392_388_200_000),
        (0, 1_392_388_500_000),
        (0, 1_392_388_800_000),
    ]
    backwards = [Row(1, 10_000, 1.0), Row(2, 20_000, 2.0), Row(3, 15_000, 3.0)]
    assert [p.send_ms for p in plan(backwards, now_ms=0, speed=1, keep_timestamps=True)] == [
        0,
        10_000,
        10_000,
    ]


class Collector:
    """A real MQTT subscriber that keeps what arrives."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="devices-test-collector")
        self._client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        wait_for(self._subscribed.is_set, 10, "the collector's subscription")

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.append((message.topic, bytes(message.payload)))

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def collector(mosquitto: Mosquitto) -> Iterator[Collector]:
    client = Collector(mosquitto.port, "#")
    yield client
    client.close()


def parse(module: Any, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_replay_publishes_through_a_broker(
    mosquitto: Mosquitto, collector: Collector, tmp_path: Path
) -> None:
    path = tmp_path / "nab.csv"
    path.write_text(NAB)
    argv = [str(path), "--topic", "site/nab/temperature", "--speed", "0", "--keep-timestamps"]
    args = parse(replay, [*argv, "--port", str(mosquitto.port), "--quiet"])
    assert replay.run(args) == 0
    wait_for(lambda: len(collector.messages) == 3, 10, "3 replayed messages")
    decoder = build_decoder(format="json", value="value", timestamp="ts")
    readings = [decoder(t, p, "nab", "temperature")[0] for t, p in collector.messages]
    assert [(r.value, r.timestamp) for r in readings] == [
        (0.132, 1_392_388_200_000),
        (0.134, 1_392_388_500_000),
        (0.134, 1_392_388_800_000),
    ]


def test_simulate_publishes_through_a_broker(mosquitto: Mosquitto, collector: Collector) -> None:
    args = parse(simulator, ["--port", str(mosquitto.port), "--devices", "2", "--rate", "50",
                             "--duration", "0.2", "--seed", "1", "--quiet"])
    assert simulator.run(args) == 0
    wait_for(lambda: len(collector.messages) == 20, 10, "20 simulated messages")
    assert {topic for topic, _ in collector.messages} == {
        "site/dev-001/temperature",
        "site/dev-002/temperature",
    }
    assert all(set(orjson.loads(payload)) == {"temp", "ts"} for _, payload in collector.messages)


def test_unreachable_broker_and_bad_input_give_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.services import free_port

    port = str(free_port())
    assert simulator.run(parse(simulator, ["--port", port, "--duration", "1"])) == 1
    assert "cannot connect to the MQTT broker at 127.0.0.1:" in capsys.readouterr().err
    assert simulator.run(parse(simulator, ["--port", port, "--rate", "0"])) == 2
    assert "rate: expected a positive number" in capsys.readouterr().err
    missing = tmp_path / "missing.csv"
    assert replay.run(parse(replay, [str(missing), "--topic", "t", "--port", port])) == 2
    assert "cannot read" in capsys.readouterr().err
