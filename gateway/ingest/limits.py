"""Limits that bound the work one payload may cost a decoder.

A payload is checked against ``max_payload_bytes`` before anything parses it; JSON nesting
depth and key counts are checked without recursion right after parsing (orjson itself refuses
nesting deeper than 1024); record counts bound multi-record formats (SenML packs, Sparkplug B
metric lists).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Upper bounds a decoder enforces on every payload.

    Attributes:
        max_payload_bytes: payloads longer than this are refused unparsed (default 64 KiB).
        max_json_depth: deepest allowed nesting of JSON arrays and objects (default 32).
        max_json_keys: most object keys allowed in one JSON document, all objects counted
            (default 10,000).
        max_records: most records in one SenML pack or metrics in one Sparkplug B payload
            (default 1,000).
    """

    max_payload_bytes: int = 64 * 1024
    max_json_depth: int = 32
    max_json_keys: int = 10_000
    max_records: int = 1_000

    def __post_init__(self) -> None:
        for name in ("max_payload_bytes", "max_json_depth", "max_json_keys", "max_records"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"DecodeLimits.{name}: expected a positive int, got {value!r}"
                raise ValueError(msg)
