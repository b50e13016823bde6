"""Device profiles: one decoder per payload format of a real device family.

A sensor's config names a ``format`` and where its value (and event time) sit in the payload;
:func:`build_decoder` turns that into a :class:`Decoder`, called once per MQTT message::

    decoder = build_decoder(format="json", value="temp", timestamp="ts", limits=DecodeLimits())
    readings = decoder(topic, payload, device, sensor)  # list[Reading] or raises DecodeError

Contract of every decoder:

- it returns zero or more :class:`~gateway.ingest.reading.Reading` (zero when a multi-quantity
  message, e.g. a Shelly ``NotifyStatus`` or a Sparkplug ``DDATA``, does not carry this sensor);
- every value is a finite float (``-0.0`` made ``0.0``); every timestamp an ``int`` of epoch ms
  or ``None`` (the arrival time is then used by ingest);
- for any topic and bytes whatsoever it raises nothing but
  :class:`~gateway.ingest.reading.DecodeError`, whose ``reason`` is one line;
- it never does I/O. It may keep state (Sparkplug B aliases and sequence numbers).

``build_decoder`` raises ``ValueError`` for a bad configuration (unknown format, malformed path,
a ``value`` or ``timestamp`` the format cannot use) so ``check-config`` can report it.
See ``docs/devices.md`` for each format with a real payload and the config that reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from devices.profiles._common import optional_path, required_path
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading

__all__ = ["FORMATS", "DecodeLimits", "Decoder", "build_decoder"]

_log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = (
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
"""Every value ``build_decoder(format=...)`` accepts."""


class Decoder(Protocol):
    """Turns one MQTT message into readings, or raises ``DecodeError`` with a reason."""

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        """Decode ``payload`` received on ``topic`` for ``device``'s sensor ``sensor``."""
        ...


def build_decoder(
    format: str,
    value: str | None = None,
    timestamp: str | None = None,
    limits: DecodeLimits | None = None,
    *,
    now_ms: Callable[[], int] | None = None,
) -> Decoder:
    """Build the decoder for one sensor.

    Args:
        format: one of :data:`FORMATS`.
        value: where the value is; its meaning depends on the format (a JSON field path for
            ``json``/``zigbee2mqtt``/``tasmota``/``shelly``, the record name for ``senml``, the
            metric name for ``sparkplug_b``, ``node/property`` or nothing for ``homie``, nothing
            for ``number``/``csv``).
        timestamp: field path of the event time, for the JSON-based formats; ``None`` means the
            payload carries none. ``senml`` and ``sparkplug_b`` take their times from their own
            fields and refuse this.
        limits: payload bounds; defaults to :class:`DecodeLimits` ``()``.
        now_ms: clock for SenML times relative to now (RFC 8428); defaults to the wall clock.

    Raises:
        ValueError: unknown format, malformed path, or an argument the format cannot use.
    """
    limits = DecodeLimits() if limits is None else limits
    if not isinstance(limits, DecodeLimits):
        msg = f"limits: expected DecodeLimits, got {type(limits).__name__}"
        raise TypeError(msg)
    inner = _build(format, value, timestamp, limits, now_ms)
    return _Guarded(inner, format)


def _build(
    fmt: str,
    value: str | None,
    timestamp: str | None,
    limits: DecodeLimits,
    now_ms: Callable[[], int] | None,
) -> Decoder:
    if fmt == "json":
        from devices.profiles._json import JsonDecoder

        return JsonDecoder(
            required_path(value, fmt, "the field path of the value, e.g. 'temp'"),
            optional_path(timestamp),
            limits,
        )
    if fmt in ("number", "csv"):
        _refuse(fmt, value=value, timestamp=timestamp)
        if fmt == "number":
            from devices.profiles._number import NumberDecoder

            return NumberDecoder(limits)
        from devices.profiles._csv import CsvDecoder

        return CsvDecoder(limits)
    if fmt == "senml":
        from devices.profiles._senml import SenmlDecoder

        _refuse(fmt, timestamp=timestamp)
        if not value:
            raise ValueError("format 'senml' needs 'value' (the record name, e.g. 'temperature')")
        return SenmlDecoder(value, limits, now_ms)
    if fmt == "zigbee2mqtt":
        from devices.profiles._zigbee2mqtt import Zigbee2MqttDecoder

        return Zigbee2MqttDecoder(
            required_path(value, fmt, "the state key, e.g. 'temperature'"),
            optional_path(timestamp),
            limits,
        )
    if fmt == "tasmota":
        from devices.profiles._tasmota import TasmotaDecoder

        return TasmotaDecoder(
            required_path(value, fmt, "the sensor path, e.g. 'DS18B20.Temperature'"),
            optional_path(timestamp),
            limits,
        )
    if fmt == "shelly":
        from devices.profiles._shelly import ShellyDecoder

        return ShellyDecoder(
            required_path(value, fmt, "the path in the status, e.g. 'temperature:0.tC'"),
            optional_path(timestamp),
            limits,
        )
    if fmt == "homie":
        from devices.profiles._homie import HomieDecoder

        _refuse(fmt, timestamp=timestamp)
        return HomieDecoder(value, limits)
    if fmt == "sparkplug_b":
        from devices.profiles._sparkplug import SparkplugDecoder

        _refuse(fmt, timestamp=timestamp)
        if not value:
            raise ValueError("format 'sparkplug_b' needs 'value' (the metric name)")
        return SparkplugDecoder(value, limits)
    msg = f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}"
    raise ValueError(msg)


def _refuse(fmt: str, **given: str | None) -> None:
    for name, text in given.items():
        if text is not None:
            reason = {
                "value": "the payload is the value",
                "timestamp": "its event time comes from the payload's own fields"
                if fmt in ("senml", "sparkplug_b")
                else "its payloads carry no named timestamp field",
            }[name]
            msg = f"format {fmt!r} takes no {name!r}: {reason}"
            raise ValueError(msg)


class _Guarded:
    """The decoder contract made unconditional: nothing but ``DecodeError`` escapes.

    A different exception is a decoder bug; it is logged with its traceback at debug level and
    turned into a ``DecodeError`` so that one odd payload never stops ingest.
    """

    __slots__ = ("_format", "_inner")

    def __init__(self, inner: Decoder, fmt: str) -> None:
        self._inner = inner
        self._format = fmt

    @property
    def inner(self) -> Decoder:
        """The decoder without the guard (tests use it to see bugs undisguised)."""
        return self._inner

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        try:
            if not isinstance(payload, bytes):
                payload = bytes(payload)
            return self._inner(topic, payload, device, sensor)
        except DecodeError:
            raise
        except Exception as exc:
            _log.debug("decoder %s failed on topic %r", self._format, topic, exc_info=True)
            msg = f"{self._format} decoder error: {type(exc).__name__} (a bug; payload refused)"
            raise DecodeError(msg) from exc
