"""What the dashboard knows about one gateway, built from its MQTT outputs (no I/O, no Textual).

The gateway publishes under a prefix ``P`` (docs/architecture.md):

    P/status                    retained health JSON; last will {"state": "offline"}
    P/devices/<device>          live per-device state, at most once a second per device
    P/windows/<device>/<sensor> a fired window result (revision 0, re-fires +1)
    P/alerts                    one alert state change (raised / resolved / acknowledged)
    P/alerts/active             retained JSON list of the active alerts

:class:`DashboardModel.apply` takes one ``(topic, payload)`` and reports what changed, so the
screens redraw only that. A payload the model cannot read is counted and remembered with the
reason (``rejected``, ``last_rejection``); it never raises. Every per-device structure is
bounded: at most ``max_devices`` devices (the rest are counted in ``dropped_devices``) and
``history`` window means per sensor.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

#: Severity names in the order an operator cares about them (most urgent first).
SEVERITY_ORDER: Mapping[str, int] = {
    "critical": 0,
    "error": 1,
    "major": 1,
    "warning": 2,
    "minor": 3,
    "info": 4,
}

DEFAULT_MAX_DEVICES = 50_000
DEFAULT_HISTORY = 60
DEFAULT_ALERT_HISTORY = 200


def severity_rank(severity: str) -> int:
    """Sort key of a severity: lower is more urgent; unknown names sort last."""
    return SEVERITY_ORDER.get(severity.lower(), len(SEVERITY_ORDER))


# --- tolerant field readers -----------------------------------------------------------------


def _num(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    number = _num(data, key)
    return None if number is None else int(number)


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


class PayloadError(ValueError):
    """A message the dashboard cannot read; the message names the topic and what was wrong."""

    def __init__(self, topic: str, problem: str) -> None:
        super().__init__(topic + ": " + problem)
        self.topic = topic
        self.problem = problem

    @classmethod
    def wrong_type(cls, topic: str, expected: str, data: object) -> PayloadError:
        return cls(topic, "expected " + expected + ", got " + type(data).__name__)


def _load_object(topic: str, payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(topic, "not JSON (" + exc.msg + ")") from exc


# --- what the gateway reports -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """The gateway's retained ``P/status``; fields it did not send are ``None``."""

    state: str
    ts: int | None = None
    version: str | None = None
    started_at: int | None = None
    uptime_s: float | None = None
    readings_in: int | None = None
    readings_per_s: float | None = None
    decode_errors: int | None = None
    rejected: int | None = None
    late: int | None = None
    dropped: int | None = None
    deadletter: int | None = None
    devices_active: int | None = None
    mqtt_connected: bool | None = None
    redis_configured: bool | None = None
    redis_connected: bool | None = None
    outbox_rows: int | None = None
    outbox_bytes: int | None = None
    outbox_oldest_age_s: float | None = None
    outbox_drain_per_s: float | None = None
    outbox_dropped: int | None = None
    alerts_active: int | None = None

    @property
    def online(self) -> bool:
        return self.state == "online"

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> GatewayStatus:
        readings = _obj(data, "readings")
        devices = _obj(data, "devices")
        redis = _obj(data, "redis")
        outbox = _obj(data, "outbox")
        return cls(
            state=_str(data, "state") or "unknown",
            ts=_int(data, "ts"),
            version=_str(data, "version"),
            started_at=_int(data, "started_at"),
            uptime_s=_num(data, "uptime_s"),
            readings_in=_int(readings, "in"),
            readings_per_s=_num(readings, "per_s"),
            decode_errors=_int(readings, "decode_errors"),
            rejected=_int(readings, "rejected"),
            late=_int(readings, "late"),
            dropped=_int(readings, "dropped"),
            deadletter=_int(readings, "deadletter"),
            devices_active=_int(devices, "active"),
            mqtt_connected=_bool(_obj(data, "mqtt"), "connected"),
            redis_configured=_bool(redis, "configured"),
            redis_connected=_bool(redis, "connected"),
            outbox_rows=_int(outbox, "rows"),
            outbox_bytes=_int(outbox, "bytes"),
            outbox_oldest_age_s=_num(outbox, "oldest_age_s"),
            outbox_drain_per_s=_num(outbox, "drain_per_s"),
            outbox_dropped=_int(outbox, "dropped"),
            alerts_active=_int(_obj(data, "alerts"), "active"),
        )


@dataclass(frozen=True, slots=True)
class Window:
    """A window's summary: half-open ``[start, end)`` in epoch ms."""

    start: int
    end: int
    count: int | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    revision: int = 0

    @classmethod
    def parse(cls, data: Mapping[str, Any], start_key: str, end_key: str) -> Window | None:
        start, end = _int(data, start_key), _int(data, end_key)
        if start is None or end is None:
            return None
        return cls(
            start=start,
            end=end,
            count=_int(data, "count"),
            mean=_num(data, "mean"),
            min=_num(data, "min"),
            max=_num(data, "max"),
            revision=_int(data, "revision") or 0,
        )


@dataclass(slots=True)
class SensorState:
    """One sensor of one device: the latest ``P/devices`` view plus fired windows."""

    name: str
    history: int = DEFAULT_HISTORY
    value: float | None = None
    event_time: int | None = None
    last_seen: int | None = None
    watermark: int | None = None
    open_window: Window | None = None
    scores: dict[str, float] = field(default_factory=dict)
    late: int | None = None
    last_fired: Window | None = None
    #: ``(window_start, mean)`` of recent fired windows, oldest first, at most ``history``.
    means: deque[tuple[int, float]] = field(default_factory=deque)

    def apply_live(self, data: Mapping[str, Any]) -> None:
        self.value = _num(data, "value")
        self.event_time = _int(data, "event_time")
        self.last_seen = _int(data, "last_seen")
        self.watermark = _int(data, "watermark")
        self.open_window = Window.parse(_obj(data, "open_window"), "start", "end")
        self.scores = {
            str(name): float(score)
            for name, score in _obj(data, "scores").items()
            if isinstance(score, int | float)
            and not isinstance(score, bool)
            and math.isfinite(score)
        }
        self.late = _int(data, "late")

    def apply_window(self, window: Window) -> None:
        """Record a fired window; a re-fire (same start, higher revision) replaces its point."""
        if self.last_fired is None or window.start >= self.last_fired.start:
            self.last_fired = window
        if window.mean is None:
            return
        for index, (start, _) in enumerate(self.means):
            if start == window.start:
                self.means[index] = (start, window.mean)
                return
        if self.means and window.start < self.means[0][0]:
            return  # older than everything we keep
        self.means.append((window.start, window.mean))
        if len(self.means) > 1 and self.means[-2][0] > window.start:
            self.means = deque(sorted(self.means))
        while len(self.means) > self.history:
            self.means.popleft()


@dataclass(slots=True)
class DeviceState:
    """One device as the gateway last described it."""

    device: str
    ts: int | None = None
    active_alerts: int = 0
    sensors: dict[str, SensorState] = field(default_factory=dict)

    def sensor(self, name: str, history: int) -> SensorState:
        found = self.sensors.get(name)
        if found is None:
            found = self.sensors[name] = SensorState(name, history=history)
        return found

    @property
    def latest(self) -> SensorState | None:
        """The sensor heard from most recently (what the devices table shows)."""
        best: SensorState | None = None
        for sensor in self.sensors.values():
            if sensor.last_seen is not None and (
                best is None or best.last_seen is None or sensor.last_seen > best.last_seen
            ):
                best = sensor
        if best is None and self.sensors:
            best = next(iter(self.sensors.values()))
        return best

    @property
    def last_seen(self) -> int | None:
        seen = [s.last_seen for s in self.sensors.values() if s.last_seen is not None]
        return max(seen) if seen else None

    @property
    def watermark_lag(self) -> int | None:
        """How far the slowest sensor's watermark trails the gateway's clock, in ms."""
        if self.ts is None:
            return None
        marks = [s.watermark for s in self.sensors.values() if s.watermark is not None]
        return max(0, self.ts - min(marks)) if marks else None


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as last published by the gateway."""

    alert_id: str
    device: str
    sensor: str
    detector: str
    severity: str
    state: str
    value: float | None = None
    score: float | None = None
    event_time: int | None = None
    raised_at: int | None = None
    resolved_at: int | None = None
    acknowledged: bool = False
    acknowledged_at: int | None = None
    acknowledged_by: str | None = None

    @property
    def active(self) -> bool:
        return self.state != "resolved"

    @classmethod
    def parse(cls, topic: str, data: Any) -> Alert:
        if not isinstance(data, dict):
            raise PayloadError.wrong_type(topic, "an alert object", data)
        alert_id = _str(data, "alert_id")
        if not alert_id:
            raise PayloadError(topic, "alert without an 'alert_id'")
        return cls(
            alert_id=alert_id,
            device=_str(data, "device") or "?",
            sensor=_str(data, "sensor") or "?",
            detector=_str(data, "detector") or "?",
            severity=(_str(data, "severity") or "warning").lower(),
            state=_str(data, "state") or "raised",
            value=_num(data, "value"),
            score=_num(data, "score"),
            event_time=_int(data, "event_time"),
            raised_at=_int(data, "raised_at"),
            resolved_at=_int(data, "resolved_at"),
            acknowledged=_bool(data, "acknowledged") or False,
            acknowledged_at=_int(data, "acknowledged_at"),
            acknowledged_by=_str(data, "acknowledged_by"),
        )

    @property
    def sort_key(self) -> tuple[int, int, str]:
        """Most urgent first, then newest first."""
        return (severity_rank(self.severity), -(self.raised_at or 0), self.alert_id)


class AlertBook:
    """Active alerts by id, plus a bounded history of resolved ones (newest first)."""

    def __init__(self, history: int = DEFAULT_ALERT_HISTORY) -> None:
        self.active: dict[str, Alert] = {}
        self.history: deque[Alert] = deque(maxlen=history)
        #: Alerts this dashboard acknowledged whose acknowledgement the gateway has not echoed.
        self.ack_pending: set[str] = set()

    def apply(self, alert: Alert) -> None:
        if alert.acknowledged:
            self.ack_pending.discard(alert.alert_id)
        if alert.active:
            self.active[alert.alert_id] = alert
            return
        self.active.pop(alert.alert_id, None)
        self.ack_pending.discard(alert.alert_id)
        self._to_history(alert)

    def replace_active(self, alerts: Iterable[Alert]) -> None:
        """Take the gateway's retained list as the truth; alerts gone from it are resolved."""
        fresh = {a.alert_id: a for a in alerts if a.active}
        for alert_id, old in self.active.items():
            if alert_id not in fresh:
                self._to_history(replace(old, state="resolved"))
        self.active = fresh
        self.ack_pending &= set(fresh)
        for alert in fresh.values():
            if alert.acknowledged:
                self.ack_pending.discard(alert.alert_id)

    def _to_history(self, alert: Alert) -> None:
        for old in list(self.history):
            if old.alert_id == alert.alert_id:
                self.history.remove(old)
        self.history.appendleft(alert)

    def sorted_active(self) -> list[Alert]:
        return sorted(self.active.values(), key=lambda a: a.sort_key)


@dataclass(slots=True)
class Changes:
    """What one batch of messages changed, so screens redraw only that."""

    status: bool = False
    devices: set[str] = field(default_factory=set)
    new_devices: set[str] = field(default_factory=set)
    alerts: bool = False
    gateways: bool = False

    def __bool__(self) -> bool:
        return self.status or bool(self.devices) or self.alerts or self.gateways

    def merge(self, other: Changes) -> None:
        self.status |= other.status
        self.devices |= other.devices
        self.new_devices |= other.new_devices
        self.alerts |= other.alerts
        self.gateways |= other.gateways


class DashboardModel:
    """Everything the dashboard shows, updated one MQTT message at a time."""

    def __init__(
        self,
        prefix: str,
        gateway_id: str,
        *,
        max_devices: int = DEFAULT_MAX_DEVICES,
        history: int = DEFAULT_HISTORY,
        alert_history: int = DEFAULT_ALERT_HISTORY,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.gateway_id = gateway_id
        self.max_devices = max_devices
        self.history = history
        self.status: GatewayStatus | None = None
        #: Local clock (ms) when the current status arrived.
        self.status_received_at: int | None = None
        #: Local clock (ms) when the gateway was last seen going offline.
        self.offline_since: int | None = None
        self.devices: dict[str, DeviceState] = {}
        self.alerts = AlertBook(alert_history)
        #: Other gateways whose status shares our prefix's parent: id -> state.
        self.other_gateways: dict[str, str] = {}
        self.rejected = 0
        self.last_rejection: str | None = None
        self.dropped_devices = 0
        self._status_topic = f"{self.prefix}/status"
        self._devices_topic = f"{self.prefix}/devices/"
        self._windows_topic = f"{self.prefix}/windows/"
        self._alerts_topic = f"{self.prefix}/alerts"
        self._active_topic = f"{self.prefix}/alerts/active"
        parent, _, own = self.prefix.rpartition("/")
        self._siblings = f"{parent}/" if parent and own == gateway_id else None

    # The topic filters a source subscribes to for this model.
    def subscriptions(self) -> list[str]:
        topics = [
            f"{self.prefix}/devices/+",
            f"{self.prefix}/windows/+/+",
            self._alerts_topic,
            self._active_topic,
        ]
        # Siblings' status covers our own and tells a user with a wrong gateway id what exists.
        topics.insert(0, f"{self._siblings}+/status" if self._siblings else self._status_topic)
        return topics

    def apply_many(self, messages: Iterable[tuple[str, bytes]], now_ms: int) -> Changes:
        changes = Changes()
        for topic, payload in messages:
            changes.merge(self.apply(topic, payload, now_ms))
        return changes

    def apply(self, topic: str, payload: bytes, now_ms: int) -> Changes:
        """Apply one message; a payload that cannot be read is counted, never raised."""
        try:
            return self._apply(topic, payload, now_ms)
        except PayloadError as exc:
            self.rejected += 1
            self.last_rejection = str(exc)
            return Changes()

    def _apply(self, topic: str, payload: bytes, now_ms: int) -> Changes:
        if topic == self._status_topic:
            return self._apply_status(topic, payload, now_ms)
        if topic.startswith(self._devices_topic):
            return self._apply_device(topic, payload)
        if topic.startswith(self._windows_topic):
            return self._apply_window(topic, payload)
        if topic == self._alerts_topic:
            self.alerts.apply(Alert.parse(topic, _load_object(topic, payload)))
            return Changes(alerts=True)
        if topic == self._active_topic:
            data = _load_object(topic, payload) if payload else []
            if not isinstance(data, list):
                raise PayloadError.wrong_type(topic, "a JSON list", data)
            self.alerts.replace_active(Alert.parse(topic, item) for item in data)
            return Changes(alerts=True)
        if self._siblings and topic.startswith(self._siblings) and topic.endswith("/status"):
            gateway = topic[len(self._siblings) : -len("/status")]
            if "/" in gateway:
                return Changes()
            if not payload:
                self.other_gateways.pop(gateway, None)
            else:
                data = _load_object(topic, payload)
                state = _str(data, "state") if isinstance(data, dict) else None
                self.other_gateways[gateway] = state or "unknown"
            return Changes(gateways=True)
        return Changes()

    def _apply_status(self, topic: str, payload: bytes, now_ms: int) -> Changes:
        if not payload:  # retained status cleared
            self.status = None
            self.status_received_at = None
            return Changes(status=True)
        data = _load_object(topic, payload)
        if not isinstance(data, dict):
            raise PayloadError.wrong_type(topic, "a JSON object", data)
        status = GatewayStatus.parse(data)
        if not status.online and self.status is not None and status.ts is None:
            # The last will carries only the state: keep the last known figures.
            status = replace(self.status, state=status.state)
        if not status.online and (self.status is None or self.status.online):
            self.offline_since = now_ms
        if status.online:
            self.offline_since = None
        self.status = status
        self.status_received_at = now_ms
        return Changes(status=True)

    def _device(self, device: str, changes: Changes) -> DeviceState | None:
        found = self.devices.get(device)
        if found is None:
            if len(self.devices) >= self.max_devices:
                self.dropped_devices += 1
                return None
            found = self.devices[device] = DeviceState(device)
            changes.new_devices.add(device)
        changes.devices.add(device)
        return found

    def _apply_device(self, topic: str, payload: bytes) -> Changes:
        data = _load_object(topic, payload)
        if not isinstance(data, dict):
            raise PayloadError.wrong_type(topic, "a JSON object", data)
        name = _str(data, "device") or topic[len(self._devices_topic) :]
        changes = Changes()
        device = self._device(name, changes)
        if device is None:
            return changes
        device.ts = _int(data, "ts")
        device.active_alerts = _int(data, "active_alerts") or 0
        for sensor_name, sensor_data in _obj(data, "sensors").items():
            if isinstance(sensor_data, dict):
                device.sensor(str(sensor_name), self.history).apply_live(sensor_data)
        return changes

    def _apply_window(self, topic: str, payload: bytes) -> Changes:
        data = _load_object(topic, payload)
        if not isinstance(data, dict):
            raise PayloadError.wrong_type(topic, "a JSON object", data)
        levels = topic[len(self._windows_topic) :].split("/")
        device_name = _str(data, "device") or levels[0]
        sensor_name = _str(data, "sensor") or (levels[1] if len(levels) > 1 else "?")
        window = Window.parse(data, "window_start", "window_end")
        if window is None:
            raise PayloadError(topic, "window without 'window_start'/'window_end'")
        changes = Changes()
        device = self._device(device_name, changes)
        if device is not None:
            device.sensor(sensor_name, self.history).apply_window(window)
        return changes
