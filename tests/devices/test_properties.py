"""Every decoder, fed anything: readings that keep the contract, or a one-line reason.

Decoders are called without the guard that turns a stray exception into a ``DecodeError``
(``.inner``), so a decoder bug fails here instead of being disguised.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.payloads import PROFILE_EXAMPLES
from devices.profiles import FORMATS, DecodeLimits, Decoder, build_decoder
from devices.profiles._sparkplug_proto import Payload
from tests.devices.helpers import assert_valid, outcome

SMALL = DecodeLimits(max_payload_bytes=4096, max_json_depth=8, max_json_keys=50, max_records=20)


def raw_decoder(fmt: str, limits: DecodeLimits | None = None) -> Decoder:
    example = PROFILE_EXAMPLES[fmt]
    guarded = build_decoder(format=fmt, value=example.value, timestamp=example.timestamp,
                            limits=limits, now_ms=lambda: 1_700_000_000_000)
    inner: Decoder = guarded.inner  # type: ignore[attr-defined]
    return inner


def example_topic(fmt: str) -> str:
    return PROFILE_EXAMPLES[fmt].topic.replace("{device}", "dev-1")


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=30,
)
field_names = st.sampled_from(
    ["temp", "ts", "temperature", "last_seen", "Time", "DS18B20", "Temperature", "params",
     "method", "temperature:0", "tC", "n", "v", "bn", "bt", "t", "s", "StatusSNS"]
)
# objects shaped like the real thing, with wrong or odd values where the fields are
near_miss = st.recursive(
    json_scalars | st.sampled_from(["NotifyStatus", "2024-01-01T00:00:00Z", "temp"]),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(field_names, children, max_size=6),
    ),
    max_leaves=25,
)
topics = st.one_of(
    st.sampled_from([example_topic(fmt) for fmt in FORMATS]),
    st.sampled_from(["", "/", "a//b", "+/#", "spBv1.0", "spBv1.0/g/DDATA/n", "spBv1.0/STATE/h",
                     "x/status/temperature:0", "homie/d/$state", "zigbee2mqtt/bridge/log"]),
    st.text(max_size=40),
)


def dumps(document: object) -> bytes:
    """JSON text as a careless device writes it: NaN and Infinity literals included."""
    return json.dumps(document, allow_nan=True).encode()


@pytest.mark.parametrize("fmt", FORMATS)
@given(payload=st.binary(max_size=300), topic=topics)
def test_arbitrary_bytes(fmt: str, payload: bytes, topic: str) -> None:
    assert_valid(outcome(raw_decoder(fmt), topic, payload))


@pytest.mark.parametrize("fmt", FORMATS)
@given(document=json_values | near_miss)
def test_arbitrary_json(fmt: str, document: object) -> None:
    assert_valid(outcome(raw_decoder(fmt), example_topic(fmt), dumps(document)))
    assert_valid(outcome(raw_decoder(fmt, SMALL), example_topic(fmt), dumps(document)))


@pytest.mark.parametrize("fmt", FORMATS)
@given(text=st.text(max_size=60))
def test_arbitrary_text(fmt: str, text: str) -> None:
    assert_valid(outcome(raw_decoder(fmt), example_topic(fmt), text.encode()))


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(min_value=1, max_value=5000), opener=st.sampled_from(["[", '{"a":']))
def test_deep_nesting(fmt: str, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    payload = (opener * depth + "1" + closer * depth).encode()
    result = outcome(raw_decoder(fmt), example_topic(fmt), payload)
    assert_valid(result)
    if fmt not in ("number", "csv", "homie", "sparkplug_b") and depth > 32:
        assert result == "JSON nested deeper than max_json_depth 32"


@pytest.mark.parametrize("fmt", ["json", "zigbee2mqtt", "tasmota", "shelly", "senml"])
def test_huge_key_count(fmt: str) -> None:
    keys = ",".join(f'"k{i}":{i}' for i in range(100_000))
    payload = ("{" + keys + "}").encode()
    limits = DecodeLimits(max_payload_bytes=len(payload))
    result = outcome(raw_decoder(fmt, limits), example_topic(fmt), payload)
    assert result == "JSON has more than max_json_keys 10000 keys"
    default = outcome(raw_decoder(fmt), example_topic(fmt), payload)
    assert default == f"payload is {len(payload)} bytes, over max_payload_bytes 65536"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize("fmt", ["json", "zigbee2mqtt", "tasmota", "senml"])
def test_non_finite_literals_refused(fmt: str, literal: str) -> None:
    payloads = {
        "json": f'{{"temp": {literal}, "ts": 1700000000000}}',
        "zigbee2mqtt": f'{{"temperature": {literal}}}',
        "tasmota": f'{{"DS18B20": {{"Temperature": {literal}}}, "Time": "2024-01-01T00:00:00"}}',
        "senml": f'[{{"n": "temperature", "v": {literal}}}]',
    }
    result = outcome(raw_decoder(fmt), example_topic(fmt), payloads[fmt].encode())
    assert isinstance(result, str)
    assert result.startswith("invalid JSON")


@pytest.mark.parametrize(("text", "expected"), [("1e308", 1e308), ("-0.0", 0.0), ("-0", 0.0)])
@pytest.mark.parametrize("fmt", ["json", "number", "csv", "homie"])
def test_extremes_and_negative_zero(fmt: str, text: str, expected: float) -> None:
    payload = f'{{"temp": {text}, "ts": 1700000000000}}' if fmt == "json" else text
    result = outcome(raw_decoder(fmt), example_topic(fmt), payload.encode())
    assert_valid(result)
    assert isinstance(result, list)
    assert [reading.value for reading in result] == [expected]
    assert math.copysign(1.0, result[0].value) == 1.0


metric_values = st.one_of(
    st.fixed_dictionaries({"int_value": st.integers(0, 2**32 - 1)}),
    st.fixed_dictionaries({"long_value": st.integers(0, 2**64 - 1)}),
    st.fixed_dictionaries({"float_value": st.floats(width=32)}),
    st.fixed_dictionaries({"double_value": st.floats()}),
    st.fixed_dictionaries({"boolean_value": st.booleans()}),
    st.fixed_dictionaries({"string_value": st.text(max_size=5)}),
    st.fixed_dictionaries({"bytes_value": st.binary(max_size=5)}),
    st.just({}),
)
metrics = st.tuples(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["Temperature", "Other", ""]),
            "alias": st.integers(0, 3),
            "timestamp": st.integers(0, 2**64 - 1),
            "datatype": st.integers(0, 25),
            "is_historical": st.booleans(),
            "is_null": st.booleans(),
        },
    ),
    metric_values,
)


@given(
    messages=st.lists(
        st.tuples(
            st.sampled_from(["NBIRTH", "DBIRTH", "NDATA", "DDATA", "NDEATH", "DCMD"]),
            st.integers(0, 300),
            st.integers(0, 2**64 - 1),
            st.lists(metrics, max_size=4),
        ),
        max_size=6,
    )
)
def test_sparkplug_arbitrary_payloads(
    messages: list[tuple[str, int, int, list[tuple[dict[str, object], dict[str, object]]]]],
) -> None:
    decoder = raw_decoder("sparkplug_b")
    for kind, seq, ts, fields in messages:
        payload = Payload(seq=seq, timestamp=ts)
        for base, value in fields:
            payload.metrics.add(**base, **value)
        topic = f"spBv1.0/g/{kind}/n" + ("/d" if kind[0] == "D" else "")
        assert_valid(outcome(decoder, topic, payload.SerializeToString()))
