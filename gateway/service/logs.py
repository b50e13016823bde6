"""Logging for a daemon: one line per event, journald-aware, optional JSON, secrets redacted.

:func:`setup_logging` installs one handler on the root logger (calling it again, e.g. after a
reload, replaces it). What a line looks like:

* **Under systemd** (stderr is the journal: ``JOURNAL_STREAM`` names our stderr) — no
  timestamp, journald adds its own; a ``<N>`` syslog priority prefix, which journald strips
  and turns into the entry's priority, so ``journalctl -p warning`` works::

      <4>gateway.ingest: device 'd1': payload rejected: invalid JSON

* **Elsewhere** (a terminal, a file)::

      2026-11-28T04:43:07.123Z WARNING gateway.ingest: device 'd1': payload rejected: ...

* **JSON** (``[logging] json = true``): one object per line with ``ts``, ``level``,
  ``logger``, ``message`` and, when there is one, ``exception`` (plus any ``extra=`` fields);
  still ``<N>``-prefixed under journald.

A message's own line breaks are escaped (``\\n``), so text that came from a device can never
forge a log line. Exception text is the only thing that spans lines, and only when asked for:

* a **user error** (see :func:`is_user_error`: configuration, file-system and network
  problems — the operator must act, not file a bug) is rendered as one line
  ``(ExceptionType: message)``; its traceback appears only at level ``debug``;
* anything else is a bug: its traceback is always logged.

**Secrets.** :func:`add_secret` registers a string (a password, a token) that must never be
logged; :class:`RedactingFilter` (installed by :func:`setup_logging`) and the formatter replace
it with ``***`` in messages, arguments, exception text and extra fields.
:func:`add_config_secrets` registers every :class:`~pydantic.SecretStr` of a configuration.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import traceback
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from pydantic import BaseModel, SecretStr

__all__ = [
    "RedactingFilter",
    "add_config_secrets",
    "add_secret",
    "clear_secrets",
    "is_user_error",
    "mark_user_error",
    "redact",
    "setup_logging",
    "stream_is_journal",
]

REDACTED: Final = "***"

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# syslog(3) priorities, as journald reads them from a "<N>" prefix.
_SYSLOG_PRIORITY: Final = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY: Final = 7

# LogRecord attributes that are not user-supplied ``extra=`` fields.
_RECORD_FIELDS: Final = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))
) | {"message", "asctime", "taskName", "user_error"}


# -- secrets --------------------------------------------------------------------------------


class _SecretRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str) -> None:
        if not secret:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets.add(secret)
            # Longest first, so a secret containing another is redacted whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._pattern = None

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(REDACTED, text)


_secrets = _SecretRegistry()


def add_secret(secret: str | SecretStr | None) -> None:
    """Never log ``secret``: every occurrence becomes ``***``. Empty values are ignored."""
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    if secret:
        _secrets.add(secret)
        # Also the forms a secret takes when it is printed inside a repr or a URL.
        quoted = repr(secret)[1:-1]
        if quoted != secret:
            _secrets.add(quoted)


def add_config_secrets(config: BaseModel) -> int:
    """Register every :class:`~pydantic.SecretStr` found anywhere in ``config``.

    Returns:
        How many secret values were found.
    """
    found = 0

    def walk(value: object) -> None:
        nonlocal found
        if isinstance(value, SecretStr):
            add_secret(value)
            found += 1
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)

    walk(config)
    return found


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    _secrets.clear()


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    return _secrets.redact(text)


class RedactingFilter(logging.Filter):
    """Replaces registered secrets in a record's message, arguments, exception and extras.

    Attach it to a *handler* (handler filters see records from every logger). The message is
    rendered once (``msg % args``) and stored redacted, and the exception text is rendered and
    redacted up front, so any formatter downstream only ever sees redacted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the event
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


# -- user errors ----------------------------------------------------------------------------

_user_errors: list[type[BaseException]] = [OSError]


def mark_user_error(*types: type[BaseException]) -> None:
    """Treat exceptions of these types as user errors: no traceback unless at debug level."""
    for kind in types:
        if kind not in _user_errors:
            _user_errors.append(kind)


def is_user_error(exc: BaseException, record: logging.LogRecord | None = None) -> bool:
    """True for a problem the operator fixes (config, files, network), not a bug.

    ``OSError`` (files, sockets, timeouts, refused connections), ``gateway.config.ConfigError``
    and every type passed to :func:`mark_user_error`; or any exception logged with
    ``extra={"user_error": True}``.
    """
    if record is not None and getattr(record, "user_error", False):
        return True
    kinds = list(_user_errors)
    # Not imported: if gateway.config was never loaded, no ConfigError can exist.
    config_module = sys.modules.get("gateway.config")
    config_error = getattr(config_module, "ConfigError", None)
    if isinstance(config_error, type):
        kinds.append(config_error)
    return isinstance(exc, tuple(kinds))


# -- formatting -----------------------------------------------------------------------------


def _priority(levelno: int) -> int:
    for threshold, priority in _SYSLOG_PRIORITY:
        if levelno >= threshold:
            return priority
    return _DEBUG_PRIORITY


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Formatter(logging.Formatter):
    """Text or JSON lines; see the module docstring."""

    def __init__(self, *, json_format: bool, journal: bool, debug: bool) -> None:
        super().__init__()
        self.json_format = json_format
        self.journal = journal
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        summary, trace = self._exception(record)
        if self.json_format:
            line = self._json(record, message, summary, trace)
            return redact(f"<{_priority(record.levelno)}>{line}" if self.journal else line)
        text = _one_line(message)
        if summary:
            text = f"{text} ({_one_line(summary)})"
        if self.journal:
            prefix = f"<{_priority(record.levelno)}>"
            head = f"{prefix}{record.name}: {text}"
            # Each traceback line keeps the priority: journald stores one entry per line.
            lines = [head, *(prefix + "  " + line for line in trace.splitlines())]
        else:
            head = f"{_timestamp(record.created)} {record.levelname} {record.name}: {text}"
            lines = [head, *("  " + line for line in trace.splitlines())]
        return redact("\n".join(lines))

    def _exception(self, record: logging.LogRecord) -> tuple[str, str]:
        """(one-line summary, traceback text or '')."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return "", redact(record.exc_text or "")
        summary = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if is_user_error(exc, record) and not self.debug:
            return summary, ""
        trace = record.exc_text or "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)
        )
        return summary, trace.rstrip("\n")

    def _json(self, record: logging.LogRecord, message: str, summary: str, trace: str) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if summary:
            out["exception"] = summary
        if trace:
            out["traceback"] = trace
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in out:
                out[key] = value
        return json.dumps(out, default=str, ensure_ascii=False)


# -- setup ----------------------------------------------------------------------------------


class _GatewayHandler(logging.StreamHandler[TextIO]):
    """Marks the handler :func:`setup_logging` installed, so a second call replaces it."""


def stream_is_journal(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """True when ``stream`` is connected to journald (``JOURNAL_STREAM=<dev>:<inode>``).

    systemd sets ``JOURNAL_STREAM`` for a service whose stdout or stderr goes to the journal;
    comparing it with the stream's device and inode tells whether *this* stream does (a child
    whose stderr was redirected still inherits the variable).
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        device, inode = (int(part) for part in value.split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return info.st_dev == device and info.st_ino == inode


def setup_logging(
    level: str = "info",
    json_format: bool = False,
    stream: TextIO | None = None,
    *,
    journal: bool | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr), one line per event.

    Args:
        level: ``debug``, ``info``, ``warning``, ``error`` or ``critical`` (any case).
        json_format: one JSON object per line instead of text.
        stream: where to write; ``sys.stderr`` when absent.
        journal: force journald mode (``<N>`` prefixes, no timestamps) on or off; detected
            from ``JOURNAL_STREAM`` when None.

    Returns:
        The installed handler. Calling again replaces it (a reload may change the level).

    Raises:
        ValueError: ``level`` is not a known level name.
    """
    try:
        levelno = _LEVELS[level.lower()]
    except KeyError:
        message = f"log level {level!r} is not one of {', '.join(_LEVELS)}"
        raise ValueError(message) from None
    target = sys.stderr if stream is None else stream
    if journal is None:
        journal = stream_is_journal(target)
    handler = _GatewayHandler(target)
    handler.setFormatter(
        _Formatter(json_format=json_format, journal=journal, debug=levelno <= logging.DEBUG)
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GatewayHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(levelno)
    return handler
