"""json, number and csv decoders: values, timestamps, and refusals with one-line reasons."""

from __future__ import annotations

import pytest

from devices.profiles import FORMATS, DecodeLimits, build_decoder
from gateway.ingest.reading import DecodeError, Reading


def decode(
    fmt: str,
    payload: bytes,
    value: str | None = None,
    timestamp: str | None = None,
    limits: DecodeLimits | None = None,
) -> list[Reading]:
    decoder = build_decoder(format=fmt, value=value, timestamp=timestamp, limits=limits)
    return decoder("site/dev-001/temperature", payload, "dev-001", "temperature")


def reason(
    fmt: str,
    payload: bytes,
    value: str | None = None,
    timestamp: str | None = None,
    limits: DecodeLimits | None = None,
) -> str:
    with pytest.raises(DecodeError) as caught:
        decode(fmt, payload, value, timestamp, limits)
    assert "\n" not in caught.value.reason
    return caught.value.reason


def test_json_demo_payload() -> None:
    assert decode("json", b'{"temp": 21.5, "ts": 1764300000123}', "temp", "ts") == [
        Reading("dev-001", "temperature", 21.5, 1_764_300_000_123)
    ]


def test_json_nested_paths_and_list_indices() -> None:
    payload = b'{"data": {"temps": [20.0, 22.25]}, "meta": {"time": "2014-02-14 14:30:00"}}'
    (reading,) = decode("json", payload, "data.temps[1]", "meta.time")
    assert reading.value == 22.25
    assert reading.timestamp == 1_392_388_200_000
    (last,) = decode("json", payload, "data.temps[-1]")
    assert last.value == 22.25
    assert last.timestamp is None
    (quoted,) = decode("json", b'{"a.b": {"c": 3}}', '["a.b"].c')
    assert quoted.value == 3.0


def test_json_normalises_negative_zero_and_ints() -> None:
    (reading,) = decode("json", b'{"temp": -0.0}', "temp")
    assert reading.value == 0.0
    assert str(reading.value) == "0.0"
    (integer,) = decode("json", b'{"temp": 18446744073709551615}', "temp")
    assert type(integer.value) is float


def test_json_accepts_1e308_as_finite() -> None:
    (reading,) = decode("json", b'{"temp": 1e308}', "temp")
    assert reading.value == 1e308


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"temp": "21.5"}', "field 'temp': expected a number, got a string"),
        (b'{"temp": true}', "field 'temp': expected a number, got a boolean"),
        (b'{"temp": null}', "field 'temp': expected a number, got null"),
        (b'{"temp": [1]}', "field 'temp': expected a number, got a list"),
        (b'{"other": 1}', "field 'temp': missing"),
        (b"[1, 2]", "field 'temp': expected an object at '(the payload)', got a list"),
        (b'{"temp": NaN}', "invalid JSON: "),
        (b'{"temp": Infinity}', "invalid JSON: "),
        (b'{"temp": -Infinity}', "invalid JSON: "),
        (b'{"temp": 1e309}', "invalid JSON: number is infinity"),
        (b'{"temp": 21.5', "invalid JSON: "),
        (b"", "empty payload, expected JSON"),
        (b"   ", "empty payload, expected JSON"),
        (b'{"temp": "\xff"}', "not valid UTF-8 at byte 10"),
    ],
)
def test_json_refusals(payload: bytes, expected: str) -> None:
    assert reason("json", payload, "temp").startswith(expected)


def test_json_timestamp_refusals() -> None:
    assert reason("json", b'{"temp": 1}', "temp", "ts") == "field 'ts': missing"
    assert reason("json", b'{"temp": 1, "ts": true}', "temp", "ts") == (
        "field 'ts': expected epoch time or ISO 8601, got a boolean"
    )
    assert "non-negative" in reason("json", b'{"temp": 1, "ts": -5}', "temp", "ts")


def test_limits_checked_before_parsing() -> None:
    payload = b'{"temp": 1, "pad": "' + b"x" * 70_000 + b'"}'
    assert reason("json", payload, "temp") == (
        f"payload is {len(payload)} bytes, over max_payload_bytes 65536"
    )
    assert reason("number", b"1" * 70_000).startswith("payload is 70000 bytes")


def test_deep_nesting_and_many_keys_refused() -> None:
    deep = b'{"temp": 1, "x": ' + b"[" * 33 + b"]" * 33 + b"}"
    assert reason("json", deep, "temp") == "JSON nested deeper than max_json_depth 32"
    very_deep = b"[" * 100_000 + b"]" * 100_000
    assert reason("json", very_deep, "temp", limits=DecodeLimits(max_payload_bytes=10**6)) == (
        "JSON nested deeper than max_json_depth 32"
    )
    many = b"{" + b",".join(b'"k%d": 1' % i for i in range(10_001)) + b', "temp": 2}'
    big = DecodeLimits(max_payload_bytes=10**6)
    assert reason("json", many, "temp", limits=big) == "JSON has more than max_json_keys 10000 keys"
    ok = b'{"temp": 1, "x": ' + b"[" * 31 + b"]" * 31 + b"}"
    assert decode("json", ok, "temp")[0].value == 1.0


@pytest.mark.parametrize(
    ("payload", "value"),
    [(b"21.5", 21.5), (b" -3\n", -3.0), (b"1e3", 1000.0), (b"-0", 0.0), (b".5", 0.5)],
)
def test_number(payload: bytes, value: float) -> None:
    assert decode("number", payload) == [Reading("dev-001", "temperature", value, None)]


@pytest.mark.parametrize(
    "payload", [b"nan", b"inf", b"-Infinity", b"true", b"0x10", b"1_000", b"", b"21.5 C", b"1e999"]
)
def test_number_refusals(payload: bytes) -> None:
    assert reason("number", payload).startswith("payload: ")


def test_csv_lines() -> None:
    payload = b"21.5,1764300000123\n22,2014-02-14 14:30:00\n\n23\n"
    assert decode("csv", payload) == [
        Reading("dev-001", "temperature", 21.5, 1_764_300_000_123),
        Reading("dev-001", "temperature", 22.0, 1_392_388_200_000),
        Reading("dev-001", "temperature", 23.0, None),
    ]
    assert reason("csv", b"1,2,3") == "payload: expected value[,timestamp], got 3 fields"
    assert reason("csv", b"1\nx") == "line 2 value: expected a decimal number, got 'x'"
    assert reason("csv", b"1,soon").startswith("payload timestamp: expected epoch time")
    many = b"\n".join(b"1" for _ in range(1001))
    assert reason("csv", many) == "1001 lines, over max_records 1000"


def test_configuration_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="expected one of json"):
        build_decoder(format="xml")
    with pytest.raises(ValueError, match="needs 'value'"):
        build_decoder(format="json")
    with pytest.raises(ValueError, match="takes no 'value'"):
        build_decoder(format="number", value="temp")
    with pytest.raises(ValueError, match=r"ends with '\.'"):
        build_decoder(format="json", value="a.")
    with pytest.raises(ValueError, match="unexpected"):
        build_decoder(format="json", value="a[x]")
    with pytest.raises(ValueError, match="positive int"):
        DecodeLimits(max_records=0)


def test_formats_listed() -> None:
    assert FORMATS == (
        "json",
        "number",
        "csv",
        "senml",
        "zigbee2mqtt",
        "tasmota",
        "shelly",
        "homie",
        "sparkplug_b",
    )


def test_a_decoder_bug_still_surfaces_as_a_decode_error() -> None:
    from devices.profiles import _Guarded

    class Broken:
        def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
            raise KeyError("oops")

    guarded = _Guarded(Broken(), "json")
    with pytest.raises(DecodeError) as caught:
        guarded("t", b"{}", "d", "s")
    assert caught.value.reason == "json decoder error: KeyError (a bug; payload refused)"
    assert isinstance(caught.value.__cause__, KeyError)
    decoder = build_decoder(format="number")
    assert decoder("t", bytearray(b"1.5"), "d", "s") == [Reading("d", "s", 1.5, None)]  # type: ignore[arg-type]
