"""Outbox entries → the Lua script's arguments (pure; no I/O).

Stream entries carry exactly the fields of the MQTT JSON object, in its order: a string value
as it is, any other value as its JSON text (``21.5``, ``true``, ``null``, ``{"p90":3}``).

The entries of a chunk travel as one JSON array (strings and integers only), which the script
decodes with ``cjson``: one argument instead of ~30 per entry, because redis-py's asyncio
client packs every argument in Python and that, not Redis, was the bottleneck.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from gateway.state.redis_connect import key_for
from gateway.sync._lua import FIXED_KEYS
from gateway.sync._outbox import OutboxEntryLike

__all__ = ["ChunkArgs", "build_chunk", "json_text", "stream_fields"]

_KIND_CODES = {"window": "w", "alert": "a", "device": "d", "late": "l"}


def json_text(value: object) -> str:
    """``value`` as JSON text (a string stays as it is: stream values are strings)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)  # the shortest round-trip form, as orjson writes it ...
        if "e" not in text and "n" not in text:
            return text
    # ... except exponents ("1e+16" vs "1e16"), and nested values: orjson's own text. (Only
    # here: orjson's bytes objects are slow to keep alive by the hundred thousand.)
    return orjson.dumps(value).decode()


def stream_fields(obj: dict[str, object]) -> list[str]:
    """Flatten a JSON object into XADD field/value pairs (non-strings as JSON text)."""
    out: list[str] = []
    append = out.append
    for key, value in obj.items():
        append(key)
        kind = type(value)  # the hot path: exact types first (bool is not int here)
        if kind is str:
            append(value)  # type: ignore[arg-type]
        elif kind is int:
            append(str(value))
        elif kind is float:
            text = repr(value)
            append(text if "e" not in text and "n" not in text else json_text(value))
        else:
            append(json_text(value))
    return out


@dataclass(frozen=True, slots=True)
class ChunkArgs:
    """KEYS and ARGV of one script call."""

    keys: list[str]
    argv: list[bytes | str | int]
    """The header values, then the entries as one JSON array (decoded by the script)."""
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
    flat: list[str | int] = []
    # Only the newest window of a device and sensor in this chunk updates the device hash.
    newest_window: dict[tuple[object, object], int] = {}
    parsed: list[object] = []
    for entry in entries:
        try:
            obj = orjson.loads(entry.payload)
        except orjson.JSONDecodeError:
            obj = None
        parsed.append(obj)
        if entry.kind == "window" and isinstance(obj, dict):
            newest_window[obj.get("device"), obj.get("sensor")] = entry.id
    for entry, obj in zip(entries, parsed, strict=True):
        if not isinstance(obj, dict):
            flat += (str(entry.id), "?", "", entry.created_at, 0, "", "", "", 0)
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
        fields: list[str]
        member = ""
        if kind == "w":
            member = entry.dedupe_key
            fields = stream_fields(obj)
            if newest_window[device, sensor] != entry.id:
                index = 0  # a newer window of this sensor follows in the chunk
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
        needs_payload = index and kind in ("w", "a", "l")
        payload = entry.payload.decode("utf-8", "replace") if needs_payload else ""
        flat += (str(entry.id), kind, member, entry.created_at, index, name, extra, payload)
        flat.append(len(fields) // 2)
        flat += fields
    argv: list[bytes | str | int] = [*header, len(entries), need_id, orjson.dumps(flat)]
    return ChunkArgs(keys, argv, entries[-1].id if entries else 0)


def _device_fields(obj: dict[str, object], payload: bytes) -> list[str]:
    """HSET pairs of a device summary: the whole summary, last seen, one field per sensor."""
    fields: list[str] = ["summary", payload.decode("utf-8", "replace")]
    last_seen = obj.get("ts")
    sensors = obj.get("sensors")
    if isinstance(sensors, dict):
        for sensor, state in sensors.items():
            fields += (f"sensor:{sensor}", json_text(state))
            if isinstance(state, dict):
                seen = state.get("last_seen")
                if isinstance(seen, int) and (not isinstance(last_seen, int) or seen > last_seen):
                    last_seen = seen
                value = state.get("value")
                if value is not None:
                    fields += (f"value:{sensor}", json_text(value))
    if isinstance(last_seen, int):
        fields += ("last_seen", str(last_seen))
    return fields
