"""Event timestamps as devices write them, turned into ``int`` epoch milliseconds.

Accepted forms (:func:`parse_timestamp`):

- numbers (``int``/``float``, or strings holding a plain decimal number): epoch time whose unit
  is guessed from the magnitude, because devices disagree and a payload never says:

  ====================  ============  ===========================================
  magnitude             read as       why the line is there
  ====================  ============  ===========================================
  ``< 1e11``            seconds       1e11 s is the year 5138
  ``1e11 .. < 1e14``    milliseconds  1e11 ms is 1973-03-03; 1e14 ms the year 5138
  ``1e14 .. < 1e17``    microseconds
  ``1e17 .. < 1e20``    nanoseconds
  ``>= 1e20``           refused
  ====================  ============  ===========================================

  So epoch milliseconds before 1973-03-03 would be misread as seconds; no sensor sends those.
  Fractions are kept down to the millisecond (rounded half to even).
- ISO 8601 strings: ``2026-11-28T04:38:21Z``, ``2026-11-28T04:38:21.250+01:00``, and the space
  separated form of the NAB benchmark files, ``2014-02-14 14:30:00``. A time without an offset
  is UTC.

Refused with a :class:`~gateway.ingest.reading.DecodeError`: booleans, ``None``, NaN and
infinities, negative times, anything after 9999-12-31, strings that are neither a number nor
ISO 8601, and any other type. Whether a time is plausible *now* (``[limits] max_clock_skew``,
``max_age``) is the ingest loop's check, not this module's.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from gateway.ingest.reading import DecodeError

__all__ = ["MAX_TIMESTAMP_MS", "parse_timestamp"]

MAX_TIMESTAMP_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last instant ISO 8601 (and ``datetime``) can write."""

_SECONDS_BELOW = 1e11
_MILLIS_BELOW = 1e14
_MICROS_BELOW = 1e17
_NANOS_BELOW = 1e20
_MAX_STRING = 64
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp(raw: object) -> int:
    """Return ``raw`` as epoch milliseconds, or raise ``DecodeError`` naming what is wrong.

    Args:
        raw: an epoch number (seconds, ms, us or ns, by magnitude), a string holding one,
            or an ISO 8601 string (no offset means UTC).
    """
    if type(raw) is int or type(raw) is float:  # the usual case, first (a bool is neither)
        return _from_number(raw)
    if isinstance(raw, bool) or raw is None:
        msg = f"timestamp: expected epoch time or ISO 8601, got {_kind(raw)}"
        raise DecodeError(msg)
    if isinstance(raw, int | float):
        return _from_number(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > _MAX_STRING:
            msg = (
                f"timestamp: expected epoch time or ISO 8601, got a string of "
                f"{len(text)} characters"
            )
            raise DecodeError(msg)
        if _NUMBER.fullmatch(text):
            return _from_number(float(text) if _needs_float(text) else int(text))
        return _from_iso(text)
    msg = f"timestamp: expected epoch time or ISO 8601, got {_kind(raw)}"
    raise DecodeError(msg)


def _needs_float(text: str) -> bool:
    return "." in text or "e" in text or "E" in text


def _from_number(number: float) -> int:
    if isinstance(number, float) and not math.isfinite(number):
        msg = f"timestamp: expected a finite number, got {number!r}"
        raise DecodeError(msg)
    if number < 0:
        msg = f"timestamp: expected a non-negative epoch time, got {number!r}"
        raise DecodeError(msg)
    if number >= _NANOS_BELOW:
        msg = f"timestamp: {number!r} is too large for epoch s, ms, us or ns"
        raise DecodeError(msg)
    if isinstance(number, int):
        if number < _SECONDS_BELOW:
            ms = number * 1000
        elif number < _MILLIS_BELOW:
            ms = number
        elif number < _MICROS_BELOW:
            ms = (number + 500) // 1000
        else:
            ms = (number + 500_000) // 1_000_000
    elif number < _SECONDS_BELOW:
        ms = round(number * 1000)
    elif number < _MILLIS_BELOW:
        ms = round(number)
    elif number < _MICROS_BELOW:
        ms = round(number / 1000)
    else:
        ms = round(number / 1_000_000)
    if ms > MAX_TIMESTAMP_MS:
        msg = f"timestamp: {number!r} is after the year 9999"
        raise DecodeError(msg)
    return ms


def _from_iso(text: str) -> int:
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        msg = f"timestamp: expected epoch time or ISO 8601, got {text!r}"
        raise DecodeError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        delta = moment - _EPOCH
    except OverflowError:  # an offset pushing year 1 or 9999 out of range
        msg = f"timestamp: {text!r} is out of range"
        raise DecodeError(msg) from None
    ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if ms < 0:
        msg = f"timestamp: {text!r} is before 1970"
        raise DecodeError(msg)
    if ms > MAX_TIMESTAMP_MS:
        msg = f"timestamp: {text!r} is after the year 9999"
        raise DecodeError(msg)
    return ms


def _kind(raw: object) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    return f"a {type(raw).__name__}"
