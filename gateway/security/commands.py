"""Commands the dashboard sends on ``<prefix>/commands``: strict validation and rate limiting.

A command is a small JSON object; anything else is refused with a :class:`CommandError`
whose ``reason`` is one line (safe to log: values are quoted and shortened, never echoed raw)::

    {"command": "ack", "alert_id": "<alert id>", "by": "dashboard@host"}

Rules (OWASP IoT: validate everything that arrives over the network):

- at most :data:`MAX_COMMAND_BYTES` of UTF-8 JSON, one object, no duplicate keys, no NaN;
- only known commands (:data:`KNOWN_COMMANDS`), only their fields, each of the expected type;
- ``alert_id`` matches :data:`ALERT_ID_PATTERN`; ``by`` is 1-:data:`MAX_BY_CHARS` printable
  characters (no control or bidi characters that could forge log lines).

:class:`CommandGate` is what the runtime calls for each message on the command topic: topic
check, rate limit (:class:`CommandRateLimiter`, a token bucket with an injected clock), parse.
The broker's ACL decides who may publish there at all (docs/security.md).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn

MAX_COMMAND_BYTES: Final = 1024
"""Largest accepted command payload."""
MAX_BY_CHARS: Final = 64
"""Longest accepted ``by`` (who sent the command)."""
ALERT_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
"""An alert id: 1-128 letters, digits, ``_``, ``.``, ``:`` or ``-`` (full match)."""
KNOWN_COMMANDS: Final = ("ack",)
"""Commands the gateway understands."""

_ACK_FIELDS: Final = frozenset({"command", "alert_id", "by"})


class CommandError(ValueError):
    """A command message that is refused; ``reason`` is one line, safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AckCommand:
    """Acknowledge an active alert."""

    alert_id: str
    by: str
    command: Literal["ack"] = "ack"

    def to_payload(self) -> bytes:
        """The message a dashboard publishes for this command."""
        body = {"command": self.command, "alert_id": self.alert_id, "by": self.by}
        return json.dumps(body, ensure_ascii=False).encode("utf-8")


Command = AckCommand
"""Any valid command (a union once there is more than one)."""


def command_topic(prefix: str) -> str:
    """The one topic the gateway accepts commands on."""
    return f"{prefix}/commands"


def parse_command(payload: bytes) -> Command:
    """Validate a command message strictly and return it.

    Raises:
        CommandError: the payload is not a valid command; ``reason`` says what is wrong.
    """
    if len(payload) > MAX_COMMAND_BYTES:
        _refuse(f"payload of {len(payload)} bytes exceeds the limit of {MAX_COMMAND_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        _refuse("payload is not UTF-8 text")
    try:
        body = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKeyError as exc:
        _refuse(f"field {_show(exc.key)} appears more than once")
    except (ValueError, RecursionError):
        _refuse("payload is not valid JSON")
    if not isinstance(body, dict):
        _refuse(f"expected a JSON object, got {_json_type(body)}")
    command = body.get("command")
    if command is None:
        _refuse("field 'command' is missing")
    if not isinstance(command, str):
        _refuse(f"field 'command': expected a string, got {_json_type(command)}")
    if command not in KNOWN_COMMANDS:
        _refuse(f"unknown command {_show(command)} (known: {', '.join(KNOWN_COMMANDS)})")
    return _parse_ack(body)


def _parse_ack(body: dict[str, Any]) -> AckCommand:
    unknown = sorted(set(body) - _ACK_FIELDS)
    if unknown:
        _refuse(f"unknown field {_show(unknown[0])} in an 'ack' command")
    alert_id = _string_field(body, "alert_id")
    if not ALERT_ID_PATTERN.fullmatch(alert_id):
        _refuse(
            f"field 'alert_id': expected 1-128 letters, digits, '_', '.', ':' or '-', "
            f"got {_show(alert_id)}"
        )
    by = _string_field(body, "by")
    if not 1 <= len(by) <= MAX_BY_CHARS:
        _refuse(f"field 'by': expected 1-{MAX_BY_CHARS} characters, got {len(by)}")
    if not by.isprintable():
        _refuse("field 'by': contains control or invisible formatting characters")
    return AckCommand(alert_id=alert_id, by=by)


def _string_field(body: dict[str, Any], name: str) -> str:
    if name not in body:
        _refuse(f"field {name!r} is missing")
    value = body[name]
    if not isinstance(value, str):
        _refuse(f"field {name!r}: expected a string, got {_json_type(value)}")
    return value


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _refuse(reason: str) -> NoReturn:
    raise CommandError(reason)


def _show(value: str, limit: int = 40) -> str:
    """A short, quoted, escaped rendering of an untrusted string for a reason."""
    shown = ascii(value[:limit])
    return shown + "..." if len(value) > limit else shown


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class CommandRateLimiter:
    """Token bucket: ``rate_per_s`` commands a second on average, bursts up to ``burst``.

    The clock is injected (``now_ms`` returns monotonic milliseconds); a clock that goes
    backwards adds no tokens. Refusals are counted in ``refused``.
    """

    def __init__(
        self,
        rate_per_s: float = 2.0,
        burst: int = 10,
        *,
        now_ms: Callable[[], int] = _monotonic_ms,
    ) -> None:
        if rate_per_s <= 0:
            msg = f"rate_per_s must be positive, got {rate_per_s!r}"
            raise ValueError(msg)
        if burst < 1:
            msg = f"burst must be at least 1, got {burst!r}"
            raise ValueError(msg)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._now_ms = now_ms
        self._tokens = float(burst)
        self._last_ms = now_ms()
        self.allowed = 0
        """Commands let through so far."""
        self.refused = 0
        """Commands refused for exceeding the rate so far."""

    def _refill(self) -> None:
        now = self._now_ms()
        elapsed = now - self._last_ms
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s / 1000)
            self._last_ms = now
        elif elapsed < 0:
            self._last_ms = now  # clock went back: no tokens, restart from here

    def try_acquire(self) -> bool:
        """Take one token if there is one; ``False`` (and counted) when over the rate."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.allowed += 1
            return True
        self.refused += 1
        return False

    def retry_after_ms(self) -> int:
        """Milliseconds until the next command would be accepted (0 = now)."""
        self._refill()
        missing = 1.0 - self._tokens
        if missing <= 0:
            return 0
        return int(-(-missing * 1000 // self.rate_per_s))


class CommandGate:
    """Everything between a received MQTT message and a command the gateway executes.

    ``check(topic, payload)`` refuses a message that is not on this gateway's own command
    topic, over the rate, or invalid; it counts each kind of refusal in ``refused`` (by
    reason class: ``topic``, ``rate``, ``invalid``) and returns the command otherwise. The rate
    is charged before parsing, so a flood of garbage cannot make the gateway parse it all.
    """

    def __init__(self, prefix: str, limiter: CommandRateLimiter | None = None) -> None:
        self.topic = command_topic(prefix)
        self.limiter = limiter or CommandRateLimiter()
        self.refused: dict[str, int] = {"topic": 0, "rate": 0, "invalid": 0}
        self.accepted = 0

    def check(self, topic: str, payload: bytes) -> Command:
        """Return the command in ``payload`` or raise :class:`CommandError` with the reason."""
        if topic != self.topic:
            self.refused["topic"] += 1
            _refuse(f"commands are accepted only on {self.topic!r}, not {_show(topic, 80)}")
        if not self.limiter.try_acquire():
            self.refused["rate"] += 1
            _refuse(
                f"over the command rate limit ({self.limiter.rate_per_s:g}/s, burst "
                f"{self.limiter.burst}); retry in {self.limiter.retry_after_ms()} ms"
            )
        try:
            command = parse_command(payload)
        except CommandError:
            self.refused["invalid"] += 1
            raise
        self.accepted += 1
        return command
