"""The device actor's logic: one device's windows, detectors, alerts and latest values.

A :class:`DeviceActor` is plain, synchronous code: it handles one reading or one tick at a
time and returns the :class:`Effects` it produced. It owns its device's key in each sensor's
:class:`~gateway.stream.WindowOperator` (the operators are shared per sensor so that 10,000
devices do not mean 10,000 operator objects; each key has its own windows and watermark), its
:class:`~gateway.detect.SensorDetectors` and :class:`~gateway.detect.AlertTracker` per sensor.
No other code touches that state. ``snapshot()``/``restore()`` give the JSON the state layer
checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config import SensorConfig
from gateway.detect import AlertTracker, Finding, SensorDetectors, build_detectors
from gateway.stream import LateEvent, WindowOperator, WindowResult

DetectorFactory = Callable[[SensorConfig], SensorDetectors]


def default_detectors(sensor: SensorConfig) -> SensorDetectors:
    return build_detectors(list(sensor.detectors))


@dataclass
class Effects:
    """What handling readings and ticks produced, for the outputs."""

    windows: list[tuple[str, WindowResult]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    late: list[tuple[str, LateEvent]] = field(default_factory=list)
    dropped_late: int = 0
    changed_devices: set[str] = field(default_factory=set)

    def extend(self, other: Effects) -> None:
        self.windows.extend(other.windows)
        self.alerts.extend(other.alerts)
        self.late.extend(other.late)
        self.dropped_late += other.dropped_late
        self.changed_devices |= other.changed_devices

    def __bool__(self) -> bool:
        return bool(self.windows or self.alerts or self.late or self.dropped_late)


@dataclass(slots=True)
class _SensorState:
    config: SensorConfig
    operator: WindowOperator
    detectors: SensorDetectors
    alerts: AlertTracker
    value: float | None = None
    event_time: int | None = None
    last_seen: int | None = None
    late: int = 0
    last_window: WindowResult | None = None


class DeviceActor:
    """One device's state and the logic that updates it, one message at a time."""

    def __init__(
        self,
        gateway_id: str,
        device: str,
        lookup: Callable[[str], tuple[SensorConfig, WindowOperator]],
        detector_factory: DetectorFactory = default_detectors,
    ) -> None:
        """Args:
        gateway_id: for alert ids.
        device: the device this actor owns.
        lookup: a sensor name's config and its shared window operator.
        detector_factory: builds a sensor's detectors (tests plug in their own).
        """
        self.gateway_id = gateway_id
        self.device = device
        self._lookup = lookup
        self._detector_factory = detector_factory
        self._sensors: dict[str, _SensorState] = {}
        self._watches_time = False

    def _sensor(self, name: str) -> _SensorState:
        state = self._sensors.get(name)
        if state is None:
            # A device gets the sensors it actually reports, on first reading.
            config, operator = self._lookup(name)
            state = self._sensors[name] = _SensorState(
                config=config,
                operator=operator,
                detectors=self._detector_factory(config),
                alerts=AlertTracker(self.gateway_id, self.device, name, list(config.detectors)),
            )
            if any(d.type == "missing" for d in config.detectors):
                self._watches_time = True
        return state

    # -- messages ---------------------------------------------------------------------------

    def on_reading(
        self, sensor: str, value: float, timestamp: int, now: int, historical: bool, out: Effects
    ) -> None:
        """Handle one accepted reading of this device."""
        state = self._sensors.get(sensor) or self._sensor(sensor)
        released = state.operator.push(self.device, value, timestamp, now)
        if not historical and (state.event_time is None or timestamp >= state.event_time):
            # Backfilled or out-of-order data feeds the windows but never hides the newest
            # value.
            state.value = value
            state.event_time = timestamp
        state.last_seen = now
        if released.late or released.dropped:
            state.late += len(released.late) + released.dropped
            out.late.extend((sensor, event) for event in released.late)
            out.dropped_late += released.dropped
        findings = state.detectors.on_reading(value, timestamp)
        self._windows(state, released.results, out)
        self._alerts(state, findings, now, out)
        out.changed_devices.add(self.device)

    def on_time(self, now: int, out: Effects) -> None:
        """Processing time moved on: processing-time detectors (``missing``) may raise."""
        for state in self._sensors.values():
            findings = state.detectors.on_time(now)
            if findings:
                self._alerts(state, findings, now, out)

    def on_fired(self, sensor: str, results: list[WindowResult], out: Effects) -> None:
        """Windows of this device fired by processing time (idle timeout, periodic watermark);
        the shared operator is advanced once for all devices by the actor system."""
        self._windows(self._sensors[sensor], results, out)

    def _windows(self, state: _SensorState, results: list[WindowResult], out: Effects) -> None:
        for result in results:
            out.windows.append((state.config.name, result))
            state.last_window = result
            findings = state.detectors.on_window(result.values, result.start, result.end)
            if findings:
                self._alerts(state, findings, result.end, out)
        if results:
            out.changed_devices.add(self.device)

    def _alerts(self, state: _SensorState, findings: list[Finding], now: int, out: Effects) -> None:
        for change in state.alerts.update(findings, now):
            out.alerts.append(change.as_dict())
            out.changed_devices.add(self.device)

    # -- views ------------------------------------------------------------------------------

    @property
    def sensors(self) -> list[str]:
        return list(self._sensors)

    def score(self, sensor: str) -> float:
        """The sensor's combined anomaly score in [0, 1] after the latest input."""
        state = self._sensors.get(sensor)
        return 0.0 if state is None else state.detectors.score

    @property
    def watches_time(self) -> bool:
        """Whether a detector of this device depends on processing time (``missing``): only
        then does :meth:`on_time` do anything."""
        return self._watches_time

    @property
    def active_alerts(self) -> list[dict[str, Any]]:
        return [a for s in self._sensors.values() for a in _as_dicts(s.alerts.active)]

    def view(self, now: int) -> dict[str, Any]:
        """The live state published on ``<prefix>/devices/<device>``."""
        sensors: dict[str, Any] = {}
        for name, state in self._sensors.items():
            windows = state.operator.open_windows(self.device)
            open_window = None
            if windows:
                start, end, values = windows[-1]
                open_window = {"start": start, "end": end, **_summary(values)}
            last = state.last_window
            sensors[name] = {
                "value": state.value,
                "event_time": state.event_time,
                "last_seen": state.last_seen,
                "watermark": state.operator.watermark(self.device),
                "open_window": open_window,
                "last_window": None
                if last is None
                else {"start": last.start, "end": last.end, "revision": last.revision,
                      **_summary(last.values)},
                "scores": state.detectors.scores,
                "score": state.detectors.score,
                "late": state.late,
                "unit": state.config.unit,
            }
        return {
            "device": self.device,
            "ts": now,
            "active_alerts": len(self.active_alerts),
            "sensors": sensors,
        }

    # -- state ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            name: {
                "window": state.operator.snapshot_key(self.device),
                "detectors": state.detectors.snapshot(),
                "alerts": state.alerts.snapshot(),
                "value": state.value,
                "event_time": state.event_time,
                "last_seen": state.last_seen,
                "late": state.late,
            }
            for name, state in self._sensors.items()
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        for name, snap in snapshot.items():
            try:
                state = self._sensor(name)
            except KeyError:
                continue  # a sensor removed from the config since the checkpoint
            state.operator.drop_key(self.device)
            if snap.get("window") is not None:
                state.operator.restore_key(self.device, snap["window"])
            state.detectors.restore(snap["detectors"])
            state.alerts.restore(snap["alerts"])
            state.value = snap.get("value")
            state.event_time = snap.get("event_time")
            state.last_seen = snap.get("last_seen")
            state.late = int(snap.get("late", 0))

    def release(self) -> None:
        """Give this device's keys in the shared operators back (passivation, restart)."""
        for state in self._sensors.values():
            state.operator.drop_key(self.device)


def _summary(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: values.get(k) for k in ("count", "mean", "min", "max")}


def _as_dicts(alerts: Any) -> list[dict[str, Any]]:
    return [a.as_dict() if hasattr(a, "as_dict") else dict(a) for a in alerts]
