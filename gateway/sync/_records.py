"""Outbox entries → the Lua script's arguments (pure; no I/O).

Stream entries carry exactly the fields of the MQTT JSON object, in its order: a string value
as it is, any other value as its JSON text (``21.5``, ``true``, ``null``, ``{"p90": 3}``), so a
reader gets the MQTT message back with ``{k: json.loads(v) if not a str field ...}`` or simply
by knowing the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from gateway.state.redis_connect import key_for
from gateway.sync._lua import FIXED_KEYS
from gateway.sync._outbox import OutboxEntryLike

__all__ = ["ChunkArgs", "build_chunk", "stream_fields"]

_KIND_CODES = {"window": "w", "alert": "a", "device": "d", "late": "l"}


def stream_fields(obj: dict[str, object]) -> list[bytes | str]:
    """Flatten a JSON object into XADD field/value pairs (non-strings as JSON text)."""
    out: list[bytes | str] = []
    for key, value in obj.items():
        out.append(key)
        out.append(value if isinstance(value, str) else orjson.dumps(value))
    return out


@dataclass(frozen=True, slots=True)
class ChunkArgs:
    """KEYS and ARGV of one script call."""

    keys: list[str]
    argv: list[bytes | str | int]
    last_id: int


def build_chunk(
    gateway_id: str,
    entries: Sequence[OutboxEntryLike],
    *,
    fixed_keys: Sequence[str],
    header: Sequence[bytes | str | int],
    need_id: int = 0,
) -> ChunkArgs:
    """Arguments of one script call applying ``entries`` (already in id order).

    ``fixed_keys`` are the script's first :data:`FIXED_KEYS` keys; ``header`` its first four
    ARGV values (the count is added here). A payload that is not a JSON object is passed as
    a device-less entry with no fields, so it still moves the high-water mark.
    """
    assert len(fixed_keys) == FIXED_KEYS
    keys = list(fixed_keys)
    device_index: dict[str, int] = {}
    argv: list[bytes | str | int] = [*header, len(entries), need_id]
    for entry in entries:
        try:
            obj = orjson.loads(entry.payload)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            argv += (entry.id, "?", "", entry.created_at, 0, "", "", b"", 0)
            continue
        device = obj.get("device")
        index = 0
        if isinstance(device, str) and device:
            index = device_index.get(device, 0)
            if not index:
                keys.append(key_for(gateway_id, "device", device))
                index = device_index[device] = len(keys)
        kind = _KIND_CODES.get(entry.kind, "?")
        sensor = obj.get("sensor")
        name = sensor if isinstance(sensor, str) else ""
        extra = ""
        fields: list[bytes | str]
        member = ""
        if kind == "w":
            member = entry.dedupe_key
            fields = stream_fields(obj)
        elif kind == "a":
            alert_id = obj.get("alert_id")
            state = obj.get("state")
            name = alert_id if isinstance(alert_id, str) else entry.dedupe_key
            extra = state if isinstance(state, str) else ""
            member = f"{name}|{extra}"
            fields = stream_fields(obj)
        elif kind == "d":
            fields = _device_fields(obj, entry.payload) if index else []
            if not index:
                kind = "?"
        elif kind == "l" and not index:
            kind = "?"
            fields = []
        else:
            fields = []
        argv += (entry.id, kind, member, entry.created_at, index, name, extra, entry.payload)
        argv.append(len(fields) // 2)
        argv += fields
    return ChunkArgs(keys, argv, entries[-1].id if entries else 0)


def _device_fields(obj: dict[str, object], payload: bytes) -> list[bytes | str]:
    """HSET pairs of a device summary: the whole summary, last seen, one field per sensor."""
    fields: list[bytes | str] = ["summary", payload]
    last_seen = obj.get("ts")
    sensors = obj.get("sensors")
    if isinstance(sensors, dict):
        for sensor, state in sensors.items():
            fields += (f"sensor:{sensor}", orjson.dumps(state))
            if isinstance(state, dict):
                seen = state.get("last_seen")
                if isinstance(seen, int) and (not isinstance(last_seen, int) or seen > last_seen):
                    last_seen = seen
                value = state.get("value")
                if value is not None:
                    fields += (f"value:{sensor}", orjson.dumps(value))
    if isinstance(last_seen, int):
        fields += ("last_seen", str(last_seen))
    return fields
