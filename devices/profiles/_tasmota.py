"""``tasmota``: the telemetry Tasmota publishes on ``tele/<topic>/SENSOR``.

Example (a DS18B20 and an AM2301 on one ESP)::

    tele/greenhouse/SENSOR  {"Time": "2024-05-01T12:00:00", "DS18B20": {"Id": "01144A0CB2AA",
                             "Temperature": 22.5}, "AM2301": {"Temperature": 21.9,
                             "Humidity": 48.1, "DewPoint": 10.5}, "TempUnit": "C"}

Config: ``value = "DS18B20.Temperature"`` (several DS18B20s appear as ``DS18B20-1``,
``DS18B20-2``...). The answer to ``Status 10`` (``stat/<topic>/STATUS10``,
``{"StatusSNS": {...}}``) is read the same way. ``timestamp = "Time"`` reads Tasmota's ``Time``,
which is the device's *local* time without an offset unless ``SetOption52 1`` is set: set it
(or run the device on UTC), otherwise leave ``timestamp`` out and the arrival time is used.
A sensor that failed to read reports ``null``, which is refused with a reason.
"""

from __future__ import annotations

from devices.profiles._common import FieldPath, load_json
from devices.profiles._json import read_fields
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading

_NOT_TELEMETRY = ("STATE", "LWT", "INFO1", "INFO2", "INFO3", "RESULT")


class TasmotaDecoder:
    """Decode one sensor value of a Tasmota ``SENSOR`` (or ``STATUS10``) message."""

    def __init__(self, value: FieldPath, timestamp: FieldPath | None, limits: DecodeLimits) -> None:
        self._value = value
        self._timestamp = timestamp
        self._limits = limits

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        last = topic.rsplit("/", 1)[-1]
        if last in _NOT_TELEMETRY:
            msg = f"topic {topic[:100]!r} is Tasmota {last}, not SENSOR telemetry"
            raise DecodeError(msg)
        document = load_json(payload, self._limits)
        if isinstance(document, dict) and isinstance(document.get("StatusSNS"), dict):
            document = document["StatusSNS"]
        return [read_fields(document, self._value, self._timestamp, device, sensor)]
