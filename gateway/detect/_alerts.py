"""The alert lifecycle of one (device, sensor): findings in, state changes out.

Per detector, an alert moves ``normal -> raised -> resolved``:

- **raise**: the ``raise_after``-th consecutive anomalous finding (by default the first)
  while no alert is active raises one; its ``alert_id`` is derived from (gateway, device,
  sensor, detector, event time of that finding), so replaying the same inputs after a crash
  gives the same id and the outbox drops the duplicate. A shorter run raises nothing.
  Hysteresis (separate raise and clear levels) is applied by the detector before it reports
  ``anomalous``.
- **no duplicates**: further anomalous findings while it is active change nothing.
- **resolve**: after ``resolve_after`` consecutive normal findings; the resolve change carries
  the raise's ``alert_id``.
- **cool-down**: after a resolve, anomalous findings within ``cooldown`` (event time) of it do
  not raise again; the first one after the cool-down does.
- **flapping**: each normal->anomalous onset is counted; ``flap_count`` onsets within
  ``flap_window`` (event time) mark the detector as flapping. A raise while flapping is marked
  ``flapping = true``, and an active alert is not resolved while flapping lasts (so a flapping
  sensor produces one raise and one resolve, not a stream of them).

Only state changes are returned (``raised`` / ``resolved``). Every decision uses event time,
so replaying the same findings gives the same changes; ``now_ms`` (processing time) only fills
``raised_at`` / ``resolved_at``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from gateway.detect._finding import Finding
from gateway.detect.config import DetectorConfig, Severity


def alert_id(gateway_id: str, device: str, sensor: str, detector: str, event_time: int) -> str:
    """Deterministic id of the alert a detector raised at ``event_time`` (24 hex digits)."""
    key = "\x1f".join((gateway_id, device, sensor, detector, str(int(event_time))))
    return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One alert state change, with DESIGN.md's alert fields.

    ``event_time`` is the event time of the input that caused the change (for a raise: the
    time the alert's condition was first seen, the one its ``alert_id`` derives from);
    ``raised_at`` is the processing time of the raise (repeated on the resolve);
    ``resolved_at`` is the processing time of the resolve (``None`` on a raise).
    """

    alert_id: str
    gateway_id: str
    device: str
    sensor: str
    detector: str
    severity: Severity
    state: Literal["raised", "resolved"]
    value: float
    score: float
    event_time: int
    raised_at: int
    flapping: bool = False
    resolved_at: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON object published on ``<prefix>/alerts`` and stored in the outbox."""
        return asdict(self)


@dataclass(slots=True)
class _DetectorAlerts:
    """Lifecycle state of one detector's alerts (bounded: ``onsets`` <= ``flap_count``)."""

    active: AlertChange | None = None
    normal_run: int = 0
    anomalous_run: int = 0  # consecutive anomalous findings, counted up to ``raise_after``
    resolved_at: int | None = None
    onsets: list[int] = field(default_factory=list)
    suppressed: int = 0


_AT_REST = _DetectorAlerts()  # compared with, never changed

_SHARED: dict[tuple[int, ...], tuple[tuple[DetectorConfig, ...], dict[str, DetectorConfig]]] = {}


def _by_name(configs: Sequence[DetectorConfig]) -> dict[str, DetectorConfig]:
    """One name -> config dict per sensor's detector list, shared by its trackers (a dict per
    device was ~180 bytes of 10,000 devices' memory). Keyed by the configs' ids, which the
    entry keeps alive; cleared when a long run of reloads has filled it."""
    key = tuple(map(id, configs))
    hit = _SHARED.get(key)
    if hit is None:
        if len(_SHARED) >= 256:
            _SHARED.clear()
        hit = _SHARED[key] = (tuple(configs), {c.detector_name: c for c in configs})
    return hit[1]


class AlertTracker:
    """Alert lifecycle for one (device, sensor); see the module docstring for the rules."""

    __slots__ = ("_configs", "_states", "device", "gateway_id", "sensor")  # one per device

    def __init__(
        self,
        gateway_id: str,
        device: str,
        sensor: str,
        configs: Sequence[DetectorConfig],
    ) -> None:
        self.gateway_id = gateway_id
        self.device = device
        self.sensor = sensor
        self._configs = _by_name(configs)  # shared by every device of the sensor: read only
        # A detector's state exists from its first anomalous finding on: until then it is at
        # rest (as a fresh _DetectorAlerts), and most devices' detectors never leave rest (a
        # dict and a state per device were ~260 bytes of an idle actor).
        self._states: dict[str, _DetectorAlerts] | None = None

    @property
    def active(self) -> list[AlertChange]:
        """The active alerts (their raise changes; ``flapping`` is kept current)."""
        if not self._states:
            return []
        return [s.active for s in self._states.values() if s.active is not None]

    @property
    def suppressed(self) -> int:
        """Raises withheld by a cool-down so far."""
        return sum(s.suppressed for s in (self._states or {}).values())

    def update(self, findings: Iterable[Finding], now_ms: int) -> list[AlertChange]:
        """Apply findings in order; return the alert state changes they cause."""
        changes: list[AlertChange] = []
        for finding in findings:
            change = self._apply(finding, now_ms)
            if change is not None:
                changes.append(change)
        return changes

    def _apply(self, f: Finding, now_ms: int) -> AlertChange | None:
        config = self._configs.get(f.detector)
        if config is None:
            msg = (
                f"finding from detector {f.detector!r}, which is not configured for sensor "
                f"{self.sensor!r} (configured: {sorted(self._configs)})"
            )
            raise ValueError(msg)
        states = self._states
        st = None if states is None else states.get(f.detector)
        if st is None:
            if not f.anomalous:
                return None  # at rest, and a normal finding leaves it there
            if states is None:
                states = self._states = {}
            st = states[f.detector] = _DetectorAlerts()
        t = f.event_time
        if not f.anomalous:
            st.anomalous_run = 0
            if st.active is None:
                return None
            st.normal_run += 1
            if st.normal_run < config.resolve_after or self._flapping(st, config, t):
                return None
            raised, st.active = st.active, None
            st.resolved_at = t
            st.normal_run = 0
            return AlertChange(
                **{
                    **raised.as_dict(),
                    "state": "resolved",
                    "value": f.value,
                    "score": f.score,
                    "event_time": t,
                    "resolved_at": now_ms,
                }
            )
        if st.anomalous_run == 0:
            st.onsets.append(t)
            del st.onsets[: -config.flap_count]
        st.anomalous_run = min(st.anomalous_run + 1, config.raise_after)
        st.normal_run = 0
        flapping = self._flapping(st, config, t)
        if st.active is not None:
            if st.active.flapping != flapping and flapping:
                st.active = AlertChange(**{**st.active.as_dict(), "flapping": True})
            return None
        if st.anomalous_run < config.raise_after:
            return None  # pending: the condition has not lasted long enough yet
        if st.resolved_at is not None and t - st.resolved_at < config.cooldown:
            st.suppressed += 1
            return None
        st.active = AlertChange(
            alert_id=alert_id(self.gateway_id, self.device, self.sensor, f.detector, t),
            gateway_id=self.gateway_id,
            device=self.device,
            sensor=self.sensor,
            detector=f.detector,
            severity=f.severity,
            state="raised",
            value=f.value,
            score=f.score,
            event_time=t,
            raised_at=now_ms,
            flapping=flapping,
        )
        return st.active

    @staticmethod
    def _flapping(st: _DetectorAlerts, config: DetectorConfig, t: int) -> bool:
        recent = [o for o in st.onsets if t - o < config.flap_window]
        return len(recent) >= config.flap_count

    def snapshot(self) -> dict[str, Any]:
        """The lifecycle state as a JSON-serialisable dict."""
        return {
            name: {
                "active": s.active.as_dict() if s.active is not None else None,
                "normal_run": s.normal_run,
                "anomalous_run": s.anomalous_run,
                "resolved_at": s.resolved_at,
                "onsets": list(s.onsets),
                "suppressed": s.suppressed,
            }
            for name, s in (self._states or {}).items()
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Load a state from :meth:`snapshot`; detectors absent from it keep theirs (at rest
        in a new tracker)."""
        for name, st in snap.items():
            if name not in self._configs:
                continue  # the detector was removed from the configuration
            active = st["active"]
            restored = _DetectorAlerts(
                active=AlertChange(**active) if active is not None else None,
                normal_run=int(st["normal_run"]),
                # snapshots before ``raise_after`` kept a flag: a run of one at most
                anomalous_run=int(st.get("anomalous_run", bool(st.get("anomalous")))),
                resolved_at=st["resolved_at"],
                onsets=[int(o) for o in st["onsets"]],
                suppressed=int(st.get("suppressed", 0)),
            )
            if restored == _AT_REST:  # as older snapshots list every detector
                if self._states is not None:
                    self._states.pop(name, None)
                continue
            if self._states is None:
                self._states = {}
            self._states[name] = restored
