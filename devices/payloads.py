"""Payloads in each profile's shape, for the simulator, CSV replay, tests and benchmarks.

:func:`make_encoder` returns an encoder that turns ``(topic, device, value, event time)`` into
the MQTT messages a real device of that family would publish; :data:`PROFILE_EXAMPLES` gives,
per format, the default topic template and the sensor config that reads those messages back.
Encoders are deterministic; the Sparkplug B one is stateful (it publishes ``NBIRTH`` and
``DBIRTH`` before the first data and numbers every message with ``seq``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson

from devices.profiles import FORMATS
from devices.profiles._common import FieldPath

__all__ = ["PROFILE_EXAMPLES", "PayloadEncoder", "ProfileExample", "make_encoder"]


@dataclass(frozen=True, slots=True)
class ProfileExample:
    """How the simulator publishes a format, and the sensor config that reads it.

    Attributes:
        topic: topic template (``{device}`` is replaced), the simulator's default ``--topic``.
        topic_filter: the MQTT filter a sensor config subscribes with.
        device: the config's ``device`` template (topic level of the device id).
        value: the config's ``value``.
        timestamp: the config's ``timestamp``.
        decimals: the resolution such a device reports its value with.
    """

    topic: str
    topic_filter: str
    device: str
    value: str | None
    timestamp: str | None
    decimals: int = 2


PROFILE_EXAMPLES: dict[str, ProfileExample] = {
    "json": ProfileExample("site/{device}/temperature", "site/+/temperature", "{1}", "temp", "ts"),
    "number": ProfileExample("site/{device}/temperature", "site/+/temperature", "{1}", None, None),
    "csv": ProfileExample("site/{device}/temperature", "site/+/temperature", "{1}", None, None),
    "senml": ProfileExample(
        "site/{device}/senml", "site/+/senml", "{1}", "temperature", None
    ),
    "zigbee2mqtt": ProfileExample(
        "zigbee2mqtt/{device}", "zigbee2mqtt/+", "{1}", "temperature", "last_seen"
    ),
    "tasmota": ProfileExample(
        "tele/{device}/SENSOR", "tele/+/SENSOR", "{1}", "DS18B20.Temperature", "Time", 1
    ),
    "shelly": ProfileExample(
        "{device}/events/rpc", "+/events/rpc", "{0}", "temperature:0.tC", "ts", 1
    ),
    "homie": ProfileExample(
        "homie/{device}/thermometer/temperature",
        "homie/+/thermometer/temperature",
        "{1}",
        "thermometer/temperature",
        None,
    ),
    "sparkplug_b": ProfileExample(
        "spBv1.0/site/DDATA/edge-sim/{device}", "spBv1.0/site/+/edge-sim/+", "{4}",
        "Temperature", None,
    ),
}
"""Per format: the simulator's default topic and the sensor config that decodes it."""


class PayloadEncoder(Protocol):
    """Turns one value into the message(s) a device of this format publishes."""

    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        """The ``(topic, payload)`` messages for ``value`` measured at ``ts_ms``."""
        ...


def make_encoder(
    format: str,
    *,
    value_field: str | None = None,
    timestamp_field: str | None = None,
) -> PayloadEncoder:
    """The encoder for ``format``.

    Args:
        format: one of :data:`~devices.profiles.FORMATS`.
        value_field: for ``json``, the value's field path (default ``temp``); for ``senml``
            the record name and for ``sparkplug_b`` the metric name (defaults as in
            :data:`PROFILE_EXAMPLES`). Ignored by the other formats, whose shape is fixed.
        timestamp_field: for ``json``, the event time's field path (default ``ts``);
            ``""`` leaves the time out.

    Raises:
        ValueError: unknown format, or a field path with list indices.
    """
    if format not in FORMATS:
        msg = f"format: expected one of {', '.join(FORMATS)}, got {format!r}"
        raise ValueError(msg)
    example = PROFILE_EXAMPLES[format]
    if format == "json":
        ts_field = "ts" if timestamp_field is None else timestamp_field
        return _JsonEncoder(value_field or "temp", ts_field or None)
    if format == "senml":
        return _SenmlEncoder(value_field or str(example.value))
    if format == "sparkplug_b":
        return _SparkplugEncoder(value_field or str(example.value))
    return _SIMPLE[format]()


def _iso(ts_ms: int, *, offset: str = "Z") -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}" + offset


def _nest(steps: tuple[str | int, ...], value: object, into: dict[str, object]) -> None:
    node = into
    for step in steps[:-1]:
        child = node.setdefault(str(step), {})
        if not isinstance(child, dict):
            msg = f"field paths collide at {step!r}"
            raise ValueError(msg)  # noqa: TRY004 - a config mistake, not a type error
        node = child
    node[str(steps[-1])] = value


class _JsonEncoder:
    def __init__(self, value_field: str, timestamp_field: str | None) -> None:
        self._value = FieldPath.parse(value_field).steps
        self._ts = FieldPath.parse(timestamp_field).steps if timestamp_field else None
        if any(isinstance(step, int) for step in self._value + (self._ts or ())):
            raise ValueError("json encoder: field paths with list indices cannot be written")

    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        document: dict[str, object] = {}
        _nest(self._value, value, document)
        if self._ts is not None:
            _nest(self._ts, ts_ms, document)
        return [(topic, orjson.dumps(document))]


class _NumberEncoder:
    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        return [(topic, repr(value).encode())]


class _CsvEncoder:
    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        return [(topic, f"{value!r},{ts_ms}".encode())]


class _SenmlEncoder:
    def __init__(self, name: str) -> None:
        self._name = name

    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        pack = [{"bn": f"urn:dev:sim:{device}:", "bt": ts_ms / 1000, "n": self._name,
                 "u": "Cel", "v": value}]
        return [(topic, orjson.dumps(pack))]


class _Zigbee2MqttEncoder:
    """An Aqara WSDCGQ11LM temperature/humidity/pressure sensor, ``last_seen: ISO_8601``."""

    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        state = {
            "battery": 97,
            "humidity": round(55.0 - (value - 21.0) * 1.5, 2),
            "last_seen": _iso(ts_ms),
            "linkquality": 120,
            "power_outage_count": 3,
            "pressure": 1006.3,
            "temperature": value,
            "voltage": 3005,
        }
        return [(topic, orjson.dumps(state))]


class _TasmotaEncoder:
    """A DS18B20 on Tasmota with ``SetOption52 1`` (``Time`` carries its UTC offset)."""

    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        seconds = ts_ms // 1000 * 1000  # Tasmota's Time has whole seconds
        message = {
            "Time": _iso(seconds, offset="+00:00").replace(".000", ""),
            "DS18B20": {"Id": "01144A0CB2AA", "Temperature": round(value, 1)},
            "TempUnit": "C",
        }
        return [(topic, orjson.dumps(message))]


class _ShellyEncoder:
    """A Shelly Plus H&T ``NotifyStatus`` on ``<id>/events/rpc``."""

    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        notification = {
            "src": device,
            "dst": f"{device}/events",
            "method": "NotifyStatus",
            "params": {
                "ts": round(ts_ms / 1000, 2),
                "temperature:0": {
                    "id": 0,
                    "tC": round(value, 1),
                    "tF": round(value * 9 / 5 + 32, 1),
                },
            },
        }
        return [(topic, orjson.dumps(notification))]


class _HomieEncoder:
    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        return [(topic, repr(value).encode())]


_SIMPLE: dict[str, type[PayloadEncoder]] = {
    "number": _NumberEncoder,
    "csv": _CsvEncoder,
    "zigbee2mqtt": _Zigbee2MqttEncoder,
    "tasmota": _TasmotaEncoder,
    "shelly": _ShellyEncoder,
    "homie": _HomieEncoder,
}

_DOUBLE = 10
_UINT64 = 8
_ALIAS = 1


class _SparkplugEncoder:
    """An edge node publishing ``NBIRTH``, one ``DBIRTH`` per device, then ``DDATA`` by alias.

    ``topic`` must be ``spBv1.0/<group>/DDATA/<node>/<device>``.
    """

    def __init__(self, metric: str) -> None:
        from devices.profiles._sparkplug_proto import Payload  # protobuf only when needed

        self._payload = Payload
        self._metric = metric
        self._seq: dict[tuple[str, str], int] = {}
        self._born: set[tuple[str, str, str]] = set()

    def _next_seq(self, node: tuple[str, str]) -> int:
        seq = self._seq[node]
        self._seq[node] = (seq + 1) % 256
        return seq

    def encode(self, topic: str, device: str, value: float, ts_ms: int) -> list[tuple[str, bytes]]:
        levels = topic.split("/")
        if len(levels) != 5 or levels[0] != "spBv1.0" or levels[2] != "DDATA":
            msg = f"sparkplug_b topic must be spBv1.0/<group>/DDATA/<node>/<device>, got {topic!r}"
            raise ValueError(msg)
        _, group, _, node, sp_device = levels
        messages: list[tuple[str, bytes]] = []
        node_key = (group, node)
        if node_key not in self._seq:
            self._seq[node_key] = 0
            birth = self._payload(timestamp=ts_ms, seq=self._next_seq(node_key))
            birth.metrics.add(name="bdSeq", datatype=_UINT64, long_value=0, timestamp=ts_ms)
            birth.metrics.add(name="Node Control/Rebirth", datatype=11, boolean_value=False,
                              timestamp=ts_ms)
            messages.append((f"spBv1.0/{group}/NBIRTH/{node}", birth.SerializeToString()))
        if (group, node, sp_device) not in self._born:
            self._born.add((group, node, sp_device))
            birth = self._payload(timestamp=ts_ms, seq=self._next_seq(node_key))
            birth.metrics.add(name=self._metric, alias=_ALIAS, datatype=_DOUBLE,
                              double_value=value, timestamp=ts_ms)
            messages.append(
                (f"spBv1.0/{group}/DBIRTH/{node}/{sp_device}", birth.SerializeToString())
            )
            return messages
        data = self._payload(timestamp=ts_ms, seq=self._next_seq(node_key))
        data.metrics.add(alias=_ALIAS, double_value=value, timestamp=ts_ms)
        messages.append((topic, data.SerializeToString()))
        return messages
