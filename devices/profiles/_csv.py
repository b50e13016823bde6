"""``csv``: ``value[,timestamp]`` per line, e.g. ``21.5,1764300000000``.

One reading per non-empty line (at most ``max_records`` lines). The optional second column is an
epoch time (s/ms/us/ns by magnitude) or ISO 8601; without it the arrival time is used. Fields may
be surrounded by spaces or double quotes; a third column is refused.
"""

from __future__ import annotations

from devices.profiles._common import decode_text, text_float, timestamp_ms
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading


class CsvDecoder:
    """Decode ``value[,timestamp]`` lines."""

    def __init__(self, limits: DecodeLimits) -> None:
        self._limits = limits

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        text = decode_text(payload, self._limits)
        if not text:
            raise DecodeError("empty payload, expected value[,timestamp]")
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > self._limits.max_records:
            msg = f"{len(lines)} lines, over max_records {self._limits.max_records}"
            raise DecodeError(msg)
        readings = []
        for number, line in enumerate(lines, start=1):
            where = f"line {number}" if len(lines) > 1 else "payload"
            fields = [field.strip().strip('"').strip() for field in line.split(",")]
            if len(fields) > 2:
                msg = f"{where}: expected value[,timestamp], got {len(fields)} fields"
                raise DecodeError(msg)
            value = text_float(fields[0], f"{where} value")
            ts = timestamp_ms(fields[1], f"{where} timestamp") if len(fields) == 2 else None
            readings.append(Reading(device, sensor, value, ts))
        return readings
