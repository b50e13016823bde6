"""``edge-gateway replay FILE.csv``: publish a recorded time series to MQTT at a chosen speed.

The CSV has a header naming a ``timestamp`` and a ``value`` column (as in the NAB benchmark
files: ``timestamp,value`` with ``2014-02-14 14:30:00``, naive = UTC); without such a header the
first two columns are taken, timestamp first. Timestamps may also be epoch s/ms/us/ns or ISO 8601
(see :mod:`gateway.ingest.timestamps`).

Row ``i`` is published ``(t_i - t_0) / speed`` seconds after the start (``--speed 0``: as fast
as possible, still in file order). Its event time is shifted so that the first row is *now*
(``t_i + now - t_0``), or kept as it is with ``--keep-timestamps`` (then the gateway's
``max_age`` limit applies: use ``edge-gateway detect`` for old files instead). Rows whose
time goes backwards are sent at once, keeping file order. Unreadable rows are skipped and
counted, each reported with its line number.

:func:`read_series` and :func:`plan` are pure (tests and benchmarks use them); :func:`run`
publishes.
"""

from __future__ import annotations

import argparse
import csv
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devices._publish import Publisher, PublishError, add_mqtt_arguments, say, stop_on_signals
from devices.payloads import make_encoder
from devices.profiles import FORMATS
from devices.profiles._common import text_float
from gateway.ingest.reading import DecodeError
from gateway.ingest.timestamps import parse_timestamp

__all__ = ["Row", "SeriesError", "add_arguments", "plan", "read_series", "run"]


class SeriesError(Exception):
    """The CSV file cannot be used at all (unreadable, no rows)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the series: ``line`` in the file, ``ts_ms`` epoch ms, ``value``."""

    line: int
    ts_ms: int
    value: float


def read_series(lines: Iterable[str], problems: list[str] | None = None) -> Iterator[Row]:
    """The rows of a ``timestamp,value`` CSV; bad rows are skipped, described in ``problems``."""
    reader = csv.reader(lines)
    columns: tuple[int, int] | None = None
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        if columns is None:
            columns = (0, 1)
            if _is_header(record):
                names = [cell.strip().lower() for cell in record]
                columns = (
                    _column(names, ("timestamp", "ts", "time", "datetime", "date"), 0),
                    _column(names, ("value", "val", "temp", "temperature"), 1),
                )
                continue
        try:
            yield _row(reader.line_num, record, columns)
        except DecodeError as exc:
            if problems is not None:
                problems.append(f"line {reader.line_num}: {exc.reason}")


def _row(line: int, record: list[str], columns: tuple[int, int]) -> Row:
    ts_column, value_column = columns
    if len(record) <= max(columns):
        msg = f"expected at least {max(columns) + 1} columns, got {len(record)}"
        raise DecodeError(msg)
    return Row(
        line, parse_timestamp(record[ts_column].strip()), text_float(record[value_column], "value")
    )


def _is_header(record: list[str]) -> bool:
    try:
        parse_timestamp(record[0].strip())
    except DecodeError:
        return True
    return False


def _column(names: list[str], wanted: tuple[str, ...], default: int) -> int:
    for name in wanted:
        if name in names:
            return names.index(name)
    return default


@dataclass(frozen=True, slots=True)
class Planned:
    """A row scheduled: sent ``send_ms`` after the start, stamped ``event_ms``."""

    send_ms: int
    event_ms: int
    value: float


def plan(
    rows: Iterable[Row], *, now_ms: int, speed: float, keep_timestamps: bool
) -> Iterator[Planned]:
    """When each row is sent (ms after the start) and the event time it carries."""
    first: int | None = None
    latest_send = 0
    for row in rows:
        if first is None:
            first = row.ts_ms
        send = 0 if speed == 0 else max(latest_send, round((row.ts_ms - first) / speed))
        latest_send = send
        event = row.ts_ms if keep_timestamps else row.ts_ms - first + now_ms
        yield Planned(send, event, row.value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``edge-gateway replay``'s arguments to ``parser``."""
    parser.add_argument("file", type=Path, metavar="FILE.csv", help="timestamp,value CSV file")
    parser.add_argument("--topic", required=True, help="topic to publish to")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="times real time (default 1; 0 = as fast as possible)",
    )
    parser.add_argument(
        "--keep-timestamps",
        action="store_true",
        help="publish the file's own event times instead of shifting the first row to now",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="json", help="payload format (default json)"
    )
    parser.add_argument(
        "--value-field", default="value", help="json: field path of the value (default value)"
    )
    parser.add_argument(
        "--timestamp-field",
        default="ts",
        help="json: field path of the event time in epoch ms (default ts; '' = none)",
    )
    parser.add_argument(
        "--device", default="replay", help="device name for formats that carry one (default replay)"
    )
    add_mqtt_arguments(parser)


def run(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    """``edge-gateway replay``: 0 when rows were published, 1 (broker) or 2 (input) otherwise.

    Ctrl-C and SIGTERM stop it cleanly; a caller running it in a thread passes ``stop``.
    """
    if not (args.speed >= 0 and args.speed != float("inf")):
        say(f"replay: --speed: expected a number >= 0, got {args.speed}", error=True)
        return 2
    topic = args.topic.replace("{device}", args.device)
    try:
        make_encoder(args.format).encode(topic, args.device, 0.0, 0)  # checks the topic shape
        encoder = make_encoder(
            args.format,
            value_field=args.value_field if args.format == "json" else None,
            timestamp_field=args.timestamp_field,
        )
    except ValueError as exc:
        say(f"replay: {exc}", error=True)
        return 2
    try:
        handle = args.file.open(encoding="utf-8", newline="")
    except OSError as exc:
        say(f"replay: cannot read {args.file}: {exc.strerror}", error=True)
        return 2
    problems: list[str] = []
    now_ms = time.time_ns() // 1_000_000
    scheduled = plan(
        read_series(handle, problems),
        now_ms=now_ms,
        speed=args.speed,
        keep_timestamps=args.keep_timestamps,
    )
    messages = (
        (item.send_ms, out_topic, payload)
        for item in scheduled
        for out_topic, payload in encoder.encode(topic, args.device, item.value, item.event_ms)
    )
    try:
        with handle, Publisher.from_args(args, client_name="replay") as publisher:
            with stop_on_signals(stop) as stop:
                sent = publisher.publish_due(
                    messages,
                    start_ms=0,
                    speed=1.0 if args.speed > 0 else 0.0,
                    stop=stop,
                    qos=args.qos,
                    progress=None if args.quiet else "replay",
                )
    except PublishError as exc:
        say(f"replay: {exc}", error=True)
        return 1
    except UnicodeDecodeError as exc:
        say(f"replay: {args.file} is not UTF-8 text (byte {exc.start})", error=True)
        return 2
    for problem in problems[:20]:
        say(f"replay: skipped {args.file} {problem}", error=True)
    if len(problems) > 20:
        say(f"replay: ... and {len(problems) - 20} more rows skipped", error=True)
    if sent == 0 and not stop.is_set():
        say(f"replay: {args.file} has no readable timestamp,value rows", error=True)
        return 2
    say(f"replay: published {sent} messages from {args.file} to {topic}")
    return 0
