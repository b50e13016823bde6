"""Offline scoring: a CSV series through the same actor and detector code as live readings.

Used by ``edge-gateway detect``. The file's own timestamps are used as they are (the live
limits on age and clock skew do not apply); each row is delivered to a device actor exactly
as a live reading would be, with its event time as processing time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

from gateway.actors import ActorSystem, Effects
from gateway.config import GatewayConfig
from gateway.ingest.reading import DecodeError, Reading
from gateway.ingest.timestamps import parse_timestamp

OFFLINE_DEVICE = "offline"


def score_rows(
    config: GatewayConfig, sensor: str, rows: Iterable[Sequence[str]]
) -> Iterator[tuple[str, str, float]]:
    """Yield ``(timestamp, value, anomaly_score)`` per input row, the score in [0, 1].

    Raises:
        ValueError: a row without a parsable timestamp or numeric value, naming the row.
    """
    system = ActorSystem(config.model_copy(update={"limits": config.limits.model_copy(
        update={"max_devices": 1})}))
    effects = Effects()
    for line, row in enumerate(rows, start=2):
        if len(row) < 2:
            raise ValueError(f"row {line}: expected timestamp,value, got {len(row)} column(s)")
        raw_ts, raw_value = row[0], row[1]
        try:
            ts = parse_timestamp(_number_or_text(raw_ts))
        except DecodeError as exc:
            raise ValueError(f"row {line}: {exc.reason}") from None
        try:
            value = float(raw_value)
        except ValueError:
            raise ValueError(f"row {line}: value {raw_value!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"row {line}: value {raw_value!r} is not a finite number")
        system.deliver([Reading(OFFLINE_DEVICE, sensor, value, ts)], ts, effects)
        effects.windows.clear()
        effects.alerts.clear()
        effects.late.clear()
        actor = system.actor(OFFLINE_DEVICE)
        score = actor.score(sensor) if actor is not None else 0.0
        yield raw_ts, raw_value, min(1.0, max(0.0, score))


def _number_or_text(raw: str) -> object:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
