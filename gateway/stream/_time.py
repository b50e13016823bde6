"""Durations and the watermark's sentinels.

Event time and processing time are ``int`` epoch milliseconds. Durations given to the
configuration objects may be ``int`` milliseconds or :class:`datetime.timedelta`; they are
normalised to ``int`` ms once, when the configuration object is built.
"""

from __future__ import annotations

from datetime import timedelta

Duration = int | timedelta
"""A duration: ``int`` milliseconds or a :class:`datetime.timedelta`."""

END_OF_TIME = 2**63 - 1
"""The watermark after ``WindowOperator.finish()`` (Flink's ``Long.MAX_VALUE``)."""

NO_WATERMARK = -(2**63)
"""Internal: the watermark of a key that has seen no event yet (``-inf``)."""


def to_ms(value: Duration, name: str, *, allow_zero: bool = True) -> int:
    """Return ``value`` as ``int`` milliseconds, or raise naming the parameter.

    Raises:
        TypeError: ``value`` is neither an ``int`` nor a ``timedelta`` (``bool`` is refused).
        ValueError: ``value`` is negative, or zero where ``allow_zero`` is false, or a
            ``timedelta`` with a sub-millisecond part.
    """
    if isinstance(value, timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        if micros % 1000:
            msg = f"{name} must be a whole number of milliseconds; got {value!r}"
            raise ValueError(msg)
        ms = micros // 1000
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    else:
        msg = (
            f"{name} must be an int of milliseconds or a datetime.timedelta; "
            f"got a {type(value).__name__} instead"
        )
        raise TypeError(msg)
    if ms < 0 or (ms == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        msg = f"{name} must be {bound} ms; got {ms}"
        raise ValueError(msg)
    return ms


def to_ms_or_none(value: Duration | None, name: str) -> int | None:
    """:func:`to_ms` for optional durations (``None`` stays ``None``); zero is refused."""
    return None if value is None else to_ms(value, name, allow_zero=False)
