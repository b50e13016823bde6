"""Durations as people write them in config: ``"250ms"``, ``"10s"``, ``"5m"``, ``"1h"``, ``"1d"``.

Inside the gateway every duration is an ``int`` of milliseconds. A bare number means seconds
(TOML users write ``checkpoint_interval = 5``); ``timedelta`` is accepted from Python callers.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)\s*$")


def parse_duration(value: object) -> int:
    """Return ``value`` as whole milliseconds; raise ``ValueError`` naming the accepted forms."""
    if isinstance(value, timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, bool):
        msg = f"expected a duration such as '10s', got {value!r}"
        raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a key's error
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return round(value * 1000)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise ValueError(
                f"expected a duration such as '250ms', '10s', '5m', '1h' or '1d', got {value!r}"
            )
        number, unit = match.groups()
        return round(float(number) * _UNITS_MS[unit])
    raise ValueError(f"expected a duration such as '10s', got {type(value).__name__}")


def format_duration(ms: int) -> str:
    """The shortest exact string for ``ms`` that :func:`parse_duration` reads back."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A pydantic field type: accepts duration strings, numbers of seconds or timedeltas; holds ms."""
