"""``senml``: Sensor Measurement Lists, RFC 8428, JSON representation (``application/senml+json``).

Example (RFC 8428 section 5.1.2, one record per quantity, base name and time shared)::

    [{"bn": "urn:dev:ow:10e2073a01080063:", "bt": 1.320067464e+09, "bu": "%RH", "v": 20},
     {"u": "lon", "v": 24.30621}, {"n": "temperature", "u": "Cel", "t": 5, "v": 23.1}]

Config: ``value = "temperature"``: a record matches when its ``n`` or its full name (base name
``bn`` + ``n``) equals it; each matching record is a reading (a pack with a time series gives
several). Event times come from the pack: ``bt + t`` in seconds; per RFC 8428 a time below 2**28
is relative to now (``0``, the default, means "now": the arrival time). Values are ``bv + v``
(or the sum ``s`` when there is no ``v``); ``vs``/``vb``/``vd`` are refused for a matching
record. A pack without a matching record is refused with the names it holds, so that a
misspelt name shows up in the dead letters rather than as silence. A single record object
(not in a list) is accepted as a pack of one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from devices.profiles._common import finite_float, kind, load_json
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading
from gateway.ingest.timestamps import MAX_TIMESTAMP_MS

_RELATIVE_BELOW = 2**28  # RFC 8428 section 4.5.3


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SenmlDecoder:
    """Decode the records named ``name`` of a SenML JSON pack."""

    def __init__(
        self, name: str, limits: DecodeLimits, now_ms: Callable[[], int] | None = None
    ) -> None:
        self._name = name
        self._limits = limits
        self._now_ms = _wall_clock_ms if now_ms is None else now_ms

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        pack = load_json(payload, self._limits)
        if isinstance(pack, dict):
            pack = [pack]
        if not isinstance(pack, list):
            msg = f"expected a SenML pack (a list of records), got {kind(pack)}"
            raise DecodeError(msg)
        if not pack:
            raise DecodeError("empty SenML pack")
        if len(pack) > self._limits.max_records:
            msg = f"SenML pack has {len(pack)} records, over max_records {self._limits.max_records}"
            raise DecodeError(msg)
        base_name, base_time, base_value = "", 0.0, 0.0
        readings: list[Reading] = []
        names: list[str] = []
        for number, record in enumerate(pack, start=1):
            if not isinstance(record, dict):
                msg = f"SenML record {number}: expected an object, got {kind(record)}"
                raise DecodeError(msg)
            if "bn" in record:
                base_name = _string(record["bn"], number, "bn")
            if "bt" in record:
                base_time = finite_float(record["bt"], f"SenML record {number} 'bt'")
            if "bv" in record:
                base_value = finite_float(record["bv"], f"SenML record {number} 'bv'")
            name = _string(record.get("n", ""), number, "n")
            full = base_name + name
            if name != self._name and full != self._name:
                if len(names) < 5:
                    names.append(full)
                continue
            where = f"SenML record {number} ({full!r})"
            readings.append(
                Reading(
                    device,
                    sensor,
                    self._value(record, base_value, where),
                    self._time(record, base_time, where),
                )
            )
        if not readings:
            shown = ", ".join(repr(name[:60]) for name in names)
            msg = f"SenML pack has no record named {self._name!r} (it has {shown})"
            raise DecodeError(msg)
        return readings

    def _value(self, record: dict[str, object], base_value: float, where: str) -> float:
        if "v" in record:
            raw = record["v"]
        elif "s" in record:
            raw = record["s"]
        else:
            other = next((key for key in ("vs", "vb", "vd") if key in record), None)
            got = f"{other!r}" if other else "no value"
            msg = f"{where}: expected a numeric value 'v', got {got}"
            raise DecodeError(msg)
        value = base_value + finite_float(raw, f"{where} 'v'")
        if not math.isfinite(value):
            msg = f"{where}: 'bv' + 'v' is not a finite number"
            raise DecodeError(msg)
        return value + 0.0

    def _time(self, record: dict[str, object], base_time: float, where: str) -> int | None:
        offset = finite_float(record["t"], f"{where} 't'") if "t" in record else 0.0
        seconds = base_time + offset
        if seconds == 0:
            return None  # "now": the arrival time
        if abs(seconds) < _RELATIVE_BELOW:
            ms = self._now_ms() + round(seconds * 1000)
        elif not math.isfinite(seconds) or seconds < 0:
            msg = f"{where}: time {seconds!r} is not a valid epoch time"
            raise DecodeError(msg)
        else:
            ms = round(seconds * 1000)
        if ms < 0:
            msg = f"{where}: time {seconds!r} is before 1970"
            raise DecodeError(msg)
        if ms > MAX_TIMESTAMP_MS:
            msg = f"{where}: time {seconds!r} s is after the year 9999"
            raise DecodeError(msg)
        return ms


def _string(value: object, number: int, key: str) -> str:
    if not isinstance(value, str):
        msg = f"SenML record {number} {key!r}: expected a string, got {kind(value)}"
        raise DecodeError(msg)
    return value
