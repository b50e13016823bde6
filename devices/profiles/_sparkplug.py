"""``sparkplug_b``: Eclipse Sparkplug B 3.0 protobuf payloads.

Topics: ``spBv1.0/<group>/<NBIRTH|NDATA|NDEATH|NCMD>/<edge node>`` and
``spBv1.0/<group>/<DBIRTH|DDATA|DDEATH|DCMD>/<edge node>/<device>``. Config::

    topic = "spBv1.0/plant1/+/+/+"       # DBIRTH (aliases) and DDATA of every node and device
    device = "{4}"                       # the Sparkplug device id ({3} for node metrics)
    format = "sparkplug_b"
    value = "Temperature"                # the metric name

Subscribe to the births as well as the data (``spBv1.0/plant1/+/+/+`` covers ``DBIRTH`` and
``DDATA``; node metrics need a second sensor on ``spBv1.0/plant1/+/+`` with ``device = "{3}"``):
a birth maps each metric name to an alias, and data messages usually carry only the alias.
The decoder remembers the aliases and data types per edge node and device (a bounded table),
so it is stateful.

Readings come from every metric with this name (or alias) in ``NBIRTH``, ``DBIRTH``, ``NDATA``
and ``DDATA`` messages; the event time is the metric's ``timestamp`` (epoch ms), else the
payload's; ``is_historical`` metrics become historical readings. ``Int8..UInt64``, ``Float`` and
``Double`` values are numbers (signed types decoded from two's complement); ``Boolean``,
``String`` and ``is_null`` values are refused. A data message without this metric yields no
reading (Sparkplug reports by exception); one whose aliases are unknown because no birth was
seen is refused with a reason saying a rebirth is needed. ``NDEATH``, ``DDEATH``, commands and
``STATE`` messages yield nothing.

Sequence numbers (``seq`` 0..255, one counter per edge node across its node and device
messages) are checked: a gap is counted in :attr:`SparkplugDecoder.sequence_gaps` (a lost
message, which Sparkplug hosts answer with a rebirth request); the data is still used. The
counter only means something when the decoder sees all of the node's messages.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError

from devices.profiles._common import check_size
from devices.profiles._sparkplug_proto import DATATYPES, Payload
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading
from gateway.ingest.timestamps import MAX_TIMESTAMP_MS

__all__ = ["SparkplugDecoder"]

_NAMESPACE = "spBv1.0"
_BIRTH = ("NBIRTH", "DBIRTH")
_DATA = ("NDATA", "DDATA")
_QUIET = ("NDEATH", "DDEATH", "NCMD", "DCMD")
_SIGNED_BITS = {1: 8, 2: 16, 3: 32, 4: 64}
_NUMERIC_FIELDS = ("int_value", "long_value", "float_value", "double_value")
_MAX_SCOPES = 4096


@dataclass(slots=True)
class _Scope:
    """What one edge node's or device's birth told us."""

    aliases: dict[int, str] = field(default_factory=dict)
    datatypes: dict[str, int] = field(default_factory=dict)


class SparkplugDecoder:
    """Decode the metric named ``metric`` from Sparkplug B messages, remembering births."""

    def __init__(self, metric: str, limits: DecodeLimits) -> None:
        self._metric = metric
        self._limits = limits
        self._scopes: dict[tuple[str, str, str], _Scope] = {}
        self._next_seq: dict[tuple[str, str], int] = {}
        self.sequence_gaps = 0
        """Messages whose ``seq`` was not the one expected for their edge node."""

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        levels = topic.split("/")
        if len(levels) < 3 or levels[0] != _NAMESPACE:
            msg = f"topic {topic[:100]!r}: expected spBv1.0/<group>/<type>/<node>"
            raise DecodeError(msg)
        if levels[1] == "STATE":
            return []
        kind = levels[2]
        if kind in _QUIET:
            return []
        if kind not in _BIRTH and kind not in _DATA:
            msg = f"topic {topic[:100]!r}: unknown Sparkplug message type {kind[:20]!r}"
            raise DecodeError(msg)
        is_device = kind[0] == "D"
        if len(levels) != (5 if is_device else 4) or not all(levels[1:]):
            raise DecodeError(
                f"topic {topic[:100]!r}: expected spBv1.0/<group>/{kind}/<node>"
                + ("/<device>" if is_device else "")
            )
        check_size(payload, self._limits)
        message = _parse(payload)
        metrics = message.metrics
        if len(metrics) > self._limits.max_records:
            msg = (
                f"Sparkplug payload has {len(metrics)} metrics, over max_records "
                f"{self._limits.max_records}"
            )
            raise DecodeError(msg)
        node_key = (levels[1], levels[3])
        scope_key = (levels[1], levels[3], levels[4] if is_device else "")
        self._check_seq(node_key, message, kind)
        if kind in _BIRTH:
            scope = self._birth(scope_key, metrics)
        else:
            scope = self._scopes.get(scope_key, _Scope())
        return self._readings(message, metrics, scope, device, sensor, kind, topic)

    def _check_seq(self, node_key: tuple[str, str], message: Any, kind: str) -> None:
        if not message.HasField("seq"):
            return
        seq = message.seq
        if seq > 255:
            msg = f"Sparkplug seq {seq} is out of range 0..255"
            raise DecodeError(msg)
        expected = self._next_seq.get(node_key)
        if kind != "NBIRTH" and expected is not None and seq != expected:
            self.sequence_gaps += 1
        if node_key not in self._next_seq and len(self._next_seq) >= _MAX_SCOPES:
            del self._next_seq[next(iter(self._next_seq))]
        self._next_seq[node_key] = (seq + 1) % 256

    def _birth(self, scope_key: tuple[str, str, str], metrics: Any) -> _Scope:
        scope = _Scope()
        for metric in metrics:
            if metric.HasField("name"):
                name = metric.name
                if metric.HasField("alias"):
                    scope.aliases[metric.alias] = name
                if metric.HasField("datatype"):
                    scope.datatypes[name] = metric.datatype
        if scope_key[2] == "":  # a new NBIRTH voids the node's device births too
            for key in [key for key in self._scopes if key[:2] == scope_key[:2]]:
                del self._scopes[key]
        self._scopes.pop(scope_key, None)
        if len(self._scopes) >= _MAX_SCOPES:
            del self._scopes[next(iter(self._scopes))]
        self._scopes[scope_key] = scope
        return scope

    def _readings(
        self,
        message: Any,
        metrics: Any,
        scope: _Scope,
        device: str,
        sensor: str,
        kind: str,
        topic: str,
    ) -> list[Reading]:
        readings: list[Reading] = []
        unknown_alias: int | None = None
        payload_ts = message.timestamp if message.HasField("timestamp") else None
        for metric in metrics:
            if metric.HasField("name"):
                name = metric.name
            elif metric.HasField("alias"):
                known = scope.aliases.get(metric.alias)
                if known is None:
                    unknown_alias = metric.alias
                    continue
                name = known
            else:
                continue
            if name != self._metric:
                continue
            datatype = metric.datatype if metric.HasField("datatype") else scope.datatypes.get(name)
            where = f"metric {name[:60]!r}"
            value = _value(metric, datatype, where)
            ts = metric.timestamp if metric.HasField("timestamp") else payload_ts
            readings.append(
                Reading(device, sensor, value, _timestamp(ts, where), metric.is_historical)
            )
        if not readings and unknown_alias is not None:
            msg = (
                f"{kind} on {topic[:100]!r} uses alias {unknown_alias} but no birth was seen "
                "for it (a rebirth is needed)"
            )
            raise DecodeError(msg)
        return readings


def _parse(payload: bytes) -> Any:
    try:
        message = Payload.FromString(payload)
        for metric in message.metrics:  # string fields decode lazily: fail here, not later
            if metric.HasField("name"):
                _ = metric.name
    except ProtobufDecodeError as exc:
        detail = str(exc).splitlines()[0].rsplit(": ", 1)[-1][:80] if str(exc) else "unreadable"
        msg = f"invalid Sparkplug B payload: {detail}"
        raise DecodeError(msg) from None
    except (UnicodeDecodeError, ValueError):
        raise DecodeError("invalid Sparkplug B payload: a metric name is not valid UTF-8") from None
    return message


def _value(metric: Any, datatype: int | None, where: str) -> float:
    if metric.is_null:
        msg = f"{where}: is null"
        raise DecodeError(msg)
    which = metric.WhichOneof("value")
    if which not in _NUMERIC_FIELDS:
        got = DATATYPES.get(datatype, f"type {datatype}") if datatype is not None else None
        shown = got or (which.removesuffix("_value") if which else "no value")
        msg = f"{where}: expected a numeric value, got {shown}"
        raise DecodeError(msg)
    raw = getattr(metric, which)
    if which == "float_value":
        number = _shortest_float32(raw)
    elif which in ("int_value", "long_value"):
        bits = _SIGNED_BITS.get(datatype or 0)
        if bits is not None:
            raw &= (1 << bits) - 1
            if raw >= 1 << (bits - 1):
                raw -= 1 << bits
        number = float(raw)
    else:
        number = raw
    if not math.isfinite(number):
        msg = f"{where}: expected a finite number, got {number!r}"
        raise DecodeError(msg)
    return number + 0.0


def _shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32: 21.3, not 21.299999237060547."""
    if not math.isfinite(value):
        return value
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value


def _timestamp(ts: int | None, where: str) -> int | None:
    if not ts:  # absent, or 0 (which edge nodes send for "unknown")
        return None
    if ts > MAX_TIMESTAMP_MS:
        msg = f"{where}: timestamp {ts} ms is after the year 9999"
        raise DecodeError(msg)
    return int(ts)
