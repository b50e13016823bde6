"""Short, fixed-width renderings of numbers, times and durations for the dashboard."""

from __future__ import annotations

from datetime import datetime, tzinfo

from rich.text import Text

SEVERITY_STYLES = {
    "critical": "bold white on red",
    "error": "bold red",
    "major": "bold red",
    "warning": "bold yellow",
    "minor": "cyan",
    "info": "blue",
}


def severity_text(severity: str) -> Text:
    return Text(severity.upper()[:8], style=SEVERITY_STYLES.get(severity, "magenta"))


def number(value: float | None) -> str:
    """A value in at most about 8 characters: ``21.5``, ``1234.5``, ``1.23e+07``, ``-``."""
    if value is None:
        return "-"
    if value == int(value) and abs(value) < 1e7:
        return str(int(value))
    return f"{value:.5g}"


def count(value: int | None) -> str:
    """An integer with thin grouping: ``12,345``; ``-`` when unknown."""
    return "-" if value is None else f"{value:,}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}/s"


def size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} GB"  # pragma: no cover - the loop always returns


def duration_ms(ms: int | float | None) -> str:
    """A duration in its two largest units: ``850ms``, ``42s``, ``3m05s``, ``2h10m``, ``4d03h``."""
    if ms is None:
        return "-"
    ms = max(0, int(ms))
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def clock(ms: int | None, tz: tzinfo) -> str:
    """Wall-clock time of an epoch-ms instant: ``12:00:05``."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=tz).strftime("%H:%M:%S")


def stamp(ms: int | None, tz: tzinfo) -> str:
    """Date and time of an epoch-ms instant: ``2025-11-28 12:00:05``."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=tz).strftime("%Y-%m-%d %H:%M:%S")


def span(start: int | None, end: int | None, tz: tzinfo) -> str:
    """A half-open window ``[start, end)`` as ``12:00:00-12:00:10``."""
    if start is None or end is None:
        return "-"
    return f"{clock(start, tz)}-{clock(end, tz)}"
