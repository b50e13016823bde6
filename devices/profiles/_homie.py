"""``homie``: Homie v4/v5 convention, one topic per property, the payload is the value.

Example::

    homie/greenhouse-1/thermometer/temperature  21.5

Config: ``topic = "homie/+/thermometer/temperature"``, ``device = "{1}"``; ``value`` is either
left out or names the property as ``"thermometer/temperature"`` (or just ``"temperature"``), in
which case a message on any other property topic is refused. Attribute topics (``$state``,
``$datatype``...) and ``/set`` command topics are refused. Homie ``integer`` and ``float``
payloads are decimal text; booleans, enums and strings are refused. Homie carries no timestamp:
the arrival time is used.
"""

from __future__ import annotations

from devices.profiles._common import decode_text, text_float
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading


class HomieDecoder:
    """Decode the numeric value of one Homie property topic."""

    def __init__(self, value: str | None, limits: DecodeLimits) -> None:
        self._property = None if value is None else tuple(value.strip("/").split("/"))
        if self._property is not None and (
            not all(self._property)
            or len(self._property) > 2
            or any(level.startswith("$") or level in ("+", "#") for level in self._property)
        ):
            msg = f"format 'homie': value must be 'node/property' or 'property', got {value!r}"
            raise ValueError(msg)
        self._limits = limits

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        levels = topic.split("/")
        if any(level.startswith("$") for level in levels):
            msg = f"topic {topic[:100]!r} is a Homie attribute, not a property value"
            raise DecodeError(msg)
        if levels[-1] == "set":
            msg = f"topic {topic[:100]!r} is a Homie command (/set), not a value"
            raise DecodeError(msg)
        if self._property is not None and tuple(levels[-len(self._property) :]) != self._property:
            wanted = "/".join(self._property)
            msg = f"topic {topic[:100]!r} is not Homie property {wanted!r}"
            raise DecodeError(msg)
        text = decode_text(payload, self._limits)
        if not text:
            raise DecodeError("empty payload, expected the property value")
        return [Reading(device, sensor, text_float(text, "payload"), None)]
