"""``shelly``: Shelly Gen2/Gen3 (Plus, Pro) status over MQTT.

Two shapes carry the same status, and one path reads both:

- the RPC notification on ``<shelly-id>/events/rpc``::

      {"src": "shellyplusht-08b61fcb7f3c", "dst": "shellyplusht-08b61fcb7f3c/events",
       "method": "NotifyStatus", "params": {"ts": 1631266595.43,
       "temperature:0": {"id": 0, "tC": 22.4, "tF": 72.3}}}

- the per-component status on ``<shelly-id>/status/temperature:0`` (with "Generic status update
  over MQTT" enabled): ``{"id": 0, "tC": 22.4, "tF": 72.3}``.

Config: ``value = "temperature:0.tC"`` (a path inside ``params``; for a status topic the
component comes from the topic's last level); ``timestamp = "ts"`` reads the notification's
``params.ts`` (epoch seconds; status topics carry none, so their readings get ``None``).
A ``NotifyStatus`` reports only what changed: one without this sensor's component yields no
reading (not an error). ``NotifyEvent`` and other methods are refused.
"""

from __future__ import annotations

from devices.profiles._common import FieldPath, finite_float, kind, load_json, timestamp_ms
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading

_STATUS_METHODS = ("NotifyStatus", "NotifyFullStatus")


class ShellyDecoder:
    """Decode one value of a Shelly Gen2 status notification or status topic."""

    def __init__(self, value: FieldPath, timestamp: FieldPath | None, limits: DecodeLimits) -> None:
        self._value = value
        self._timestamp = timestamp
        self._limits = limits

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        document = load_json(payload, self._limits)
        levels = topic.split("/")
        if len(levels) >= 3 and levels[-2] == "status":
            root: dict[str, object] = {levels[-1]: document}  # .../status/temperature:0
            with_time = False
        else:
            if not isinstance(document, dict):
                msg = f"expected a Shelly RPC notification object, got {kind(document)}"
                raise DecodeError(msg)
            if "method" not in document:
                raise DecodeError("expected a Shelly RPC notification, 'method' is missing")
            method = document["method"]
            if method not in _STATUS_METHODS:
                shown = method[:40] if isinstance(method, str) else kind(method)
                msg = f"expected method NotifyStatus, got {shown!r}"
                raise DecodeError(msg)
            params = document.get("params")
            if not isinstance(params, dict):
                msg = f"field 'params': expected an object, got {kind(params)}"
                raise DecodeError(msg)
            root = params
            with_time = True
        first = self._value.steps[0]
        if isinstance(first, str) and first not in root:
            return []  # a notification about other components
        number = self._value.get(root)
        value = finite_float(number, self._value.where)
        ts = None
        if self._timestamp is not None and with_time:
            ts = timestamp_ms(self._timestamp.get(root), self._timestamp.where)
        return [Reading(device, sensor, value, ts)]
