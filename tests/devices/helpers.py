"""Shared by the device profile tests: run a decoder and get readings or the reason."""

from __future__ import annotations

import math

from devices.profiles import Decoder
from gateway.ingest.reading import DecodeError, Reading
from gateway.ingest.timestamps import MAX_TIMESTAMP_MS


def outcome(
    decoder: Decoder, topic: str, payload: bytes, device: str = "dev-1", sensor: str = "s"
) -> list[Reading] | str:
    """The readings, or the ``DecodeError`` reason; any other exception propagates."""
    try:
        return decoder(topic, payload, device, sensor)
    except DecodeError as exc:
        return exc.reason


def assert_valid(result: list[Reading] | str, device: str = "dev-1", sensor: str = "s") -> None:
    """The decoder contract: valid readings, or a one-line, non-empty reason."""
    if isinstance(result, str):
        assert result
        assert "\n" not in result
        assert "decoder error" not in result, result  # the guard caught a bug
        return
    assert isinstance(result, list)
    for reading in result:
        assert isinstance(reading, Reading)
        assert reading.device == device
        assert reading.sensor == sensor
        assert type(reading.value) is float
        assert math.isfinite(reading.value)
        assert math.copysign(1.0, reading.value) == 1.0 or reading.value != 0.0  # no -0.0
        assert reading.timestamp is None or type(reading.timestamp) is int
        if reading.timestamp is not None:
            assert 0 <= reading.timestamp <= MAX_TIMESTAMP_MS
        assert type(reading.historical) is bool


def reason(decoder: Decoder, topic: str, payload: bytes) -> str:
    """The reason ``decoder`` refuses ``payload`` (fails the test when it accepts it)."""
    result = outcome(decoder, topic, payload)
    assert isinstance(result, str), f"expected a refusal, got {result}"
    return result
