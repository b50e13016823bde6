"""The simulator's pure generator: determinism, signal, anomalies, delivery order, formats."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.payloads import PROFILE_EXAMPLES, make_encoder
from devices.profiles import FORMATS, build_decoder
from devices.simulator import SimConfig, SimMessage, device_names, iter_messages

START = 1_764_300_000_000


def messages(**fields: object) -> list[SimMessage]:
    config = SimConfig(**fields)  # type: ignore[arg-type]
    return list(iter_messages(config, START))


def test_same_seed_same_messages_other_seed_other_values() -> None:
    first = messages(devices=3, rate=2, duration=30, seed=7, anomaly="spike", out_of_order=0.2)
    again = messages(devices=3, rate=2, duration=30, seed=7, anomaly="spike", out_of_order=0.2)
    other = messages(devices=3, rate=2, duration=30, seed=8, anomaly="spike", out_of_order=0.2)
    assert first == again
    assert [m.value for m in first] != [m.value for m in other]


def test_demo_shape_and_counts() -> None:
    out = messages(devices=3, rate=2, duration=5, seed=1)
    assert len(out) == 3 * 2 * 5
    assert {m.device for m in out} == {"dev-001", "dev-002", "dev-003"}
    decoder = build_decoder(format="json", value="temp", timestamp="ts")
    for message in out:
        assert message.topic == f"site/{message.device}/temperature"
        (reading,) = decoder(message.topic, message.payload, message.device, "temperature")
        assert reading.value == message.value
        assert reading.timestamp == message.event_ms
        assert START <= message.event_ms < START + 5000
    times = [m.event_ms for m in out]
    assert times == sorted(times)  # no out-of-order asked for: delivered in event order
    assert [m.event_ms for m in out if m.device == "dev-001"][:3] == [START, START + 500,
                                                                       START + 1000]


def test_signal_is_realistic() -> None:
    out = messages(devices=4, rate=1, duration=600, seed=3)
    for name in device_names(4):
        values = [m.value for m in out if m.device == name]
        assert 14.0 < min(values) <= max(values) < 28.0
        steps = [abs(b - a) for a, b in itertools.pairwise(values)]
        assert 0.01 < statistics.mean(steps) < 0.5  # noisy, but no jumps
    means = {statistics.mean(m.value for m in out if m.device == name) for name in device_names(4)}
    assert len(means) == 4  # per-device offsets


def test_spike_visible_only_on_anomalous_devices() -> None:
    out = messages(devices=3, rate=1, duration=600, seed=5, anomaly="spike", anomaly_rate=0.05,
                   anomaly_devices=1)
    flagged = [m for m in out if m.anomaly == "spike"]
    assert flagged
    assert {m.device for m in flagged} == {"dev-001"}
    median = statistics.median(m.value for m in out if m.device == "dev-001")
    assert all(abs(m.value - median) > 4.0 for m in flagged)
    normal = [m for m in out if m.device == "dev-002"]
    assert all(abs(m.value - statistics.median(n.value for n in normal)) < 6.0 for m in normal)


def test_stuck_repeats_one_value() -> None:
    out = messages(devices=1, rate=1, duration=600, seed=2, anomaly="stuck", anomaly_rate=0.02)
    stuck = [m for m in out if m.anomaly == "stuck"]
    assert len(stuck) >= 60
    run = [m.value for m in stuck[:60]]
    assert len(set(run)) == 1


def test_drift_ramps_up() -> None:
    out = messages(devices=1, rate=1, duration=600, seed=2, anomaly="drift", anomaly_rate=0.02)
    drift = [m for m in out if m.anomaly == "drift"]
    assert len(drift) >= 60
    episode = drift[:60]
    assert episode[-1].value - episode[0].value > 6.0


def test_dropout_leaves_gaps() -> None:
    out = messages(devices=2, rate=1, duration=600, seed=2, anomaly="dropout", anomaly_rate=0.02)
    first = [m.event_ms for m in out if m.device == "dev-001"]
    second = [m.event_ms for m in out if m.device == "dev-002"]
    assert len(second) == 600
    assert len(first) <= 600 - 60
    assert max(b - a for a, b in itertools.pairwise(first)) >= 60_000


def test_out_of_order_and_late_delivery() -> None:
    out = messages(devices=2, rate=2, duration=120, seed=4, out_of_order=0.1, late=0.05,
                   late_delay=30)
    assert len(out) == 2 * 2 * 120
    sends = [m.send_ms for m in out]
    assert sends == sorted(sends)  # yielded in delivery order
    late = [m for m in out if m.delay_ms == 30_000]
    reordered = [m for m in out if 0 < m.delay_ms < 30_000]
    assert 0.02 * len(out) < len(late) < 0.1 * len(out)
    assert 0.05 * len(out) < len(reordered) < 0.2 * len(out)
    assert all(500 < m.delay_ms <= 1501 for m in reordered)
    for name in ("dev-001", "dev-002"):
        times = [m.event_ms for m in out if m.device == name]
        assert times != sorted(times)
        assert sorted(times) == sorted(set(times))  # nothing lost or duplicated


def test_endless_when_duration_is_zero() -> None:
    head = list(itertools.islice(iter_messages(SimConfig(devices=2, rate=100), START), 5000))
    assert len(head) == 5000


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_with_its_documented_config(fmt: str) -> None:
    example = PROFILE_EXAMPLES[fmt]
    decoder = build_decoder(format=fmt, value=example.value, timestamp=example.timestamp)
    out = messages(devices=2, rate=1, duration=10, seed=9, format=fmt)
    decoded = 0
    for message in out:
        readings = decoder(message.topic, message.payload, message.device, "temperature")
        if not readings:
            assert fmt == "sparkplug_b"
            assert "/NBIRTH/" in message.topic
            continue
        (reading,) = readings
        decoded += 1
        assert reading.value == message.value
        if reading.timestamp is not None:
            precision = {"tasmota": 1000, "shelly": 10}.get(fmt, 0)
            assert abs(reading.timestamp - message.event_ms) <= precision
        else:
            assert fmt in ("number", "homie")
    assert decoded == 20


def test_bad_configs_are_refused_with_every_reason() -> None:
    with pytest.raises(ValueError, match="devices: expected at least 1") as caught:
        SimConfig(devices=0, rate=-1, format="xml", late=2.0, topic="site/x")
    text = str(caught.value)
    for part in ("rate:", "format:", "late:", "topic:"):
        assert part in text


@given(
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    ts=st.integers(min_value=300_000_000_000, max_value=4_102_444_800_000),
    fmt=st.sampled_from(["json", "number", "csv", "senml", "zigbee2mqtt", "homie"]),
)
def test_encoders_round_trip_exactly(value: float, ts: int, fmt: str) -> None:
    example = PROFILE_EXAMPLES[fmt]
    decoder = build_decoder(format=fmt, value=example.value, timestamp=example.timestamp)
    topic = example.topic.replace("{device}", "d")
    ((out_topic, payload),) = make_encoder(fmt).encode(topic, "d", value, ts)
    (reading,) = decoder(out_topic, payload, "d", "s")
    assert reading.value == value + 0.0
    assert math.copysign(1.0, reading.value) == 1.0 or reading.value != 0
    assert reading.timestamp in (ts, None)
