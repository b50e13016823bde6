"""``json``: a JSON object with the value (and optionally the event time) at field paths.

Config: ``value = "temp"`` or ``"data.temps[0]"``; ``timestamp = "ts"`` (epoch s/ms or ISO 8601)
or absent. Example: ``{"temp": 21.5, "ts": 1764300000000}``.
"""

from __future__ import annotations

from devices.profiles._common import FieldPath, finite_float, load_json, timestamp_ms
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import Reading


class JsonDecoder:
    """Decode one reading from a JSON payload by field paths."""

    def __init__(self, value: FieldPath, timestamp: FieldPath | None, limits: DecodeLimits) -> None:
        self._value = value
        self._timestamp = timestamp
        self._limits = limits

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        document = load_json(payload, self._limits)
        return [read_fields(document, self._value, self._timestamp, device, sensor)]


def read_fields(
    document: object,
    value: FieldPath,
    timestamp: FieldPath | None,
    device: str,
    sensor: str,
    *,
    historical: bool = False,
) -> Reading:
    """One reading from ``document``: the value at ``value``, the time at ``timestamp``."""
    number = finite_float(value.get(document), value.where)
    ts = None
    if timestamp is not None:
        ts = timestamp_ms(timestamp.get(document), timestamp.where)
    return Reading(device, sensor, number, ts, historical)
