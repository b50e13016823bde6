"""Gateway messages as the gateway publishes them (docs/architecture.md), at a fixed time.

``T0`` is the fixed "now" of every test: 2025-11-28 03:20:00 UTC.
"""

from __future__ import annotations

from typing import Any

import orjson

T0 = 1_764_300_000_000
GATEWAY = "site-a-gw1"
PREFIX = f"edge-gateway/{GATEWAY}"


def dumps(data: Any) -> bytes:
    return orjson.dumps(data)


def status(
    *,
    ts: int = T0 - 1_000,
    state: str = "online",
    per_s: float = 24.6,
    redis_connected: bool = False,
    outbox_rows: int = 120,
    late: int = 3,
    dropped: int = 0,
    deadletter: int = 2,
    active_alerts: int = 1,
) -> dict[str, Any]:
    return {
        "gateway_id": GATEWAY,
        "state": state,
        "version": "0.1.0",
        "started_at": ts - 3_725_000,
        "ts": ts,
        "uptime_s": 3725.0,
        "readings": {
            "in": 91_234,
            "per_s": per_s,
            "decode_errors": 2,
            "rejected": 1,
            "late": late,
            "dropped": dropped,
            "deadletter": deadletter,
        },
        "devices": {"active": 3, "parked": 0, "refused": 0},
        "mqtt": {"connected": True},
        "redis": {"configured": True, "connected": redis_connected},
        "outbox": {
            "rows": outbox_rows,
            "bytes": outbox_rows * 410,
            "oldest_age_s": 42.0 if outbox_rows else None,
            "drain_per_s": 0.0,
            "dropped": 0,
        },
        "alerts": {"active": active_alerts},
    }


LAST_WILL = {"state": "offline"}


def sensor(
    value: float,
    *,
    last_seen: int = T0 - 2_000,
    window_start: int = T0 - 10_000,
    count: int = 7,
    scores: dict[str, float] | None = None,
    late: int = 0,
) -> dict[str, Any]:
    return {
        "value": value,
        "event_time": last_seen - 50,
        "last_seen": last_seen,
        "watermark": last_seen - 5_050,
        "open_window": {
            "start": window_start,
            "end": window_start + 10_000,
            "count": count,
            "mean": value - 0.5,
            "min": value - 1.5,
            "max": value,
        },
        "scores": scores if scores is not None else {"zscore": 0.12},
        "late": late,
    }


def device(
    name: str, *, active_alerts: int = 0, ts: int = T0 - 1_000, **sensors: Any
) -> dict[str, Any]:
    return {"device": name, "ts": ts, "active_alerts": active_alerts, "sensors": sensors}


def window(
    device_name: str,
    sensor_name: str,
    start: int,
    mean: float,
    *,
    size: int = 10_000,
    revision: int = 0,
) -> dict[str, Any]:
    return {
        "device": device_name,
        "sensor": sensor_name,
        "window_start": start,
        "window_end": start + size,
        "count": 10,
        "sum": mean * 10,
        "mean": mean,
        "min": mean - 1.0,
        "max": mean + 1.0,
        "revision": revision,
    }


def alert(
    alert_id: str,
    *,
    device_name: str = "boiler-1",
    sensor_name: str = "temperature",
    detector: str = "threshold",
    severity: str = "critical",
    state: str = "raised",
    value: float = 91.5,
    raised_at: int = T0 - 30_000,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "gateway_id": GATEWAY,
        "device": device_name,
        "sensor": sensor_name,
        "detector": detector,
        "severity": severity,
        "state": state,
        "value": value,
        "score": 1.0,
        "event_time": raised_at - 100,
        "raised_at": raised_at,
        **extra,
    }


def site() -> list[tuple[str, bytes]]:
    """A small site: three devices, fired windows, one critical and one warning alert."""
    critical = alert("a-crit-1")
    warning = alert(
        "a-warn-1",
        device_name="pump-7",
        sensor_name="vibration",
        detector="zscore",
        severity="warning",
        value=4.2,
        raised_at=T0 - 90_000,
    )
    messages: list[tuple[str, bytes]] = [
        (f"{PREFIX}/status", dumps(status())),
        (
            f"{PREFIX}/devices/boiler-1",
            dumps(
                device(
                    "boiler-1",
                    active_alerts=1,
                    temperature=sensor(91.5, scores={"threshold": 1.0, "zscore": 0.93}),
                    pressure=sensor(2.25, last_seen=T0 - 4_000, late=2),
                )
            ),
        ),
        (
            f"{PREFIX}/devices/pump-7",
            dumps(device("pump-7", active_alerts=1, vibration=sensor(4.2, count=12))),
        ),
        (
            f"{PREFIX}/devices/cold-room",
            dumps(device("cold-room", humidity=sensor(61.0, last_seen=T0 - 95_000))),
        ),
    ]
    for index, mean in enumerate([70.0, 72.5, 71.0, 75.0, 80.0, 84.0, 88.5, 90.0]):
        start = T0 - 90_000 + index * 10_000
        messages.append(
            (
                f"{PREFIX}/windows/boiler-1/temperature",
                dumps(window("boiler-1", "temperature", start, mean)),
            )
        )
    messages.append((f"{PREFIX}/alerts/active", dumps([critical, warning])))
    messages.append(
        (
            f"{PREFIX}/alerts",
            dumps(
                alert(
                    "a-old-1",
                    severity="warning",
                    state="resolved",
                    device_name="cold-room",
                    sensor_name="humidity",
                    detector="flatline",
                    value=61.0,
                    raised_at=T0 - 600_000,
                    resolved_at=T0 - 300_000,
                )
            ),
        )
    )
    return messages
