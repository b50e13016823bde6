"""``number``: the payload is the value as plain decimal text, e.g. ``21.5``.

No timestamp (the arrival time is used). Surrounding whitespace is ignored; ``nan``, ``inf``,
``true``, hex and empty payloads are refused.
"""

from __future__ import annotations

from devices.profiles._common import decode_text, text_float
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import Reading


class NumberDecoder:
    """Decode a plain numeric payload."""

    def __init__(self, limits: DecodeLimits) -> None:
        self._limits = limits

    def __call__(self, topic: str, payload: bytes, device: str, sensor: str) -> list[Reading]:
        text = decode_text(payload, self._limits)
        return [Reading(device, sensor, text_float(text, "payload"), None)]
