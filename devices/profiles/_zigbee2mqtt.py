"""``zigbee2mqtt``: the device state Zigbee2MQTT publishes on ``zigbee2mqtt/<friendly_name>``.

Example (Aqara WSDCGQ11LM)::

    zigbee2mqtt/living_room  {"battery": 100, "humidity": 58.18, "linkquality": 120,
                              "pressure": 1006.3, "temperature": 19.2, "voltage": 3005}

Config: ``value = "temperature"`` (any state key or path); ``timestamp = "last_seen"`` when the
bridge option ``advanced.last_seen`` is ``ISO_8601`` or ``epoch`` (otherwise the arrival time is
used). Messages on the bridge's own topics (``zigbee2mqtt/bridge/...``) and on a device's
``/availability``, ``/set``, ``/get`` sub-topics are refused as not device state.
"""

from __future__ import annotations

from devices.profiles._common import FieldPath, load_json
from devices.profiles._json import read_fields
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading

_NOT_STATE = ("availability", "set", "get")


class Zigbee2MqttDecoder:
    """Decode one key of a Zigbee2MQTT device state message."""

    def __init__(self, value: FieldPath, timestamp: FieldPath | None, limits: DecodeLimits) -> None:
        self._value = value
        self._timestamp = timestamp
        self._limits = limits

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        levels = topic.split("/")
        if len(levels) >= 2 and (levels[1] == "bridge" or levels[-1] in _NOT_STATE):
            msg = f"topic {topic[:100]!r} is not a zigbee2mqtt device state message"
            raise DecodeError(msg)
        document = load_json(payload, self._limits)
        return [read_fields(document, self._value, self._timestamp, device, sensor)]
