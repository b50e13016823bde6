"""What every decoder shares: payload limits, UTF-8 and JSON checks, field paths, numbers.

Everything here raises :class:`DecodeError` (never anything else) for bad input, and
``ValueError`` only for a bad *configuration* (a field path that cannot be parsed), which
:func:`devices.profiles.build_decoder` surfaces when the decoder is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError
from gateway.ingest.timestamps import parse_timestamp

_MISSING = object()


def check_size(payload: bytes, limits: DecodeLimits) -> None:
    """Refuse a payload over ``limits.max_payload_bytes`` before anything parses it."""
    if len(payload) > limits.max_payload_bytes:
        msg = f"payload is {len(payload)} bytes, over max_payload_bytes {limits.max_payload_bytes}"
        raise DecodeError(msg)


def decode_text(payload: bytes, limits: DecodeLimits) -> str:
    """The payload as text: size-checked, valid UTF-8, with surrounding whitespace removed."""
    check_size(payload, limits)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not valid UTF-8 at byte {exc.start}"
        raise DecodeError(msg) from None
    return text.strip()


def load_json(payload: bytes, limits: DecodeLimits) -> object:
    """Parse a JSON payload within ``limits``; raise ``DecodeError`` naming the first problem.

    The size is checked first. orjson validates UTF-8, refuses ``NaN``/``Infinity`` literals and
    numbers that overflow a double, and nests at most 1024 deep. Depth and key count are then
    checked by an explicit-stack walk, skipped when byte counts already prove them small.
    """
    check_size(payload, limits)
    if not payload or payload.isspace():
        raise DecodeError("empty payload, expected JSON")
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        _raise_utf8(payload)
        if "depth limit" in str(exc):
            msg = f"JSON nested deeper than max_json_depth {limits.max_json_depth}"
            raise DecodeError(msg) from None
        msg = f"invalid JSON: {_first_line(str(exc))}"
        raise DecodeError(msg) from None
    openers = payload.count(b"{") + payload.count(b"[")
    if openers > limits.max_json_depth or payload.count(b":") > limits.max_json_keys:
        _check_shape(document, limits)
    return document


def _raise_utf8(payload: bytes) -> None:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not valid UTF-8 at byte {exc.start}"
        raise DecodeError(msg) from None


def _check_shape(document: object, limits: DecodeLimits) -> None:
    keys = 0
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > limits.max_json_depth:
                msg = f"JSON nested deeper than max_json_depth {limits.max_json_depth}"
                raise DecodeError(msg)
            keys += len(node)
            if keys > limits.max_json_keys:
                msg = f"JSON has more than max_json_keys {limits.max_json_keys} keys"
                raise DecodeError(msg)
            stack.extend(
                (child, depth + 1) for child in node.values() if isinstance(child, dict | list)
            )
        elif isinstance(node, list):
            if depth > limits.max_json_depth:
                msg = f"JSON nested deeper than max_json_depth {limits.max_json_depth}"
                raise DecodeError(msg)
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))


def _first_line(message: str) -> str:
    return message.splitlines()[0] if message else "unreadable"


def kind(value: object) -> str:
    """How a reason names a JSON value's type: ``a string``, ``an object``, ``null``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def finite_float(value: object, where: str) -> float:
    """``value`` as a finite float, ``-0.0`` made ``0.0``; booleans and non-numbers refused.

    Any finite double is accepted, 1e308 included: range checks are the detectors' business.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{where}: expected a number, got {kind(value)}"
        raise DecodeError(msg)
    try:
        number = float(value)
    except OverflowError:
        msg = f"{where}: {value} is out of the range of a double"
        raise DecodeError(msg) from None
    if not math.isfinite(number):
        msg = f"{where}: expected a finite number, got {number!r}"
        raise DecodeError(msg)
    return number + 0.0  # -0.0 + 0.0 == 0.0


_TEXT_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def text_float(text: str, where: str) -> float:
    """A plain decimal number written as text (``"21.5"``, ``"-3"``, ``"1e3"``) as a finite float.

    Refused: ``nan``, ``inf``, ``true``, hex, underscores, empty text — whatever Python's
    ``float()`` would accept beyond plain decimal notation.
    """
    stripped = text.strip()
    if not _TEXT_NUMBER.fullmatch(stripped):
        shown = stripped if len(stripped) <= 32 else stripped[:32] + "..."
        msg = f"{where}: expected a decimal number, got {shown!r}"
        raise DecodeError(msg)
    number = float(stripped)
    if not math.isfinite(number):
        msg = f"{where}: {stripped[:32]!r} is out of the range of a double"
        raise DecodeError(msg)
    return number + 0.0


def timestamp_ms(value: object, where: str) -> int:
    """``parse_timestamp`` with the field named in the reason."""
    try:
        return parse_timestamp(value)
    except DecodeError as exc:
        msg = f"{where}: {exc.reason.removeprefix('timestamp: ')}"
        raise DecodeError(msg) from None


_SEGMENT = re.compile(
    r"""\[\s*(?P<index>-?\d+)\s*\]       # [0]
      | \[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]   # ["key.with.dots"]
      | \[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]
      | (?P<key>[^.\[\]]+)               # plain key
      | (?P<dot>\.)""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A parsed field path such as ``data.temps[0]`` or ``["a.b"].c``.

    Keys are separated by dots; ``[N]`` indexes a list (negative counts from the end);
    ``["..."]`` quotes a key holding dots or brackets. Parsed once, when the decoder is built.
    """

    text: str
    steps: tuple[str | int, ...]
    where: str = field(init=False, repr=False, compare=False)
    """``field 'data.temps[0]'``: how a reason names the field, made once rather than per
    payload."""
    key: str | None = field(init=False, repr=False, compare=False)
    """The key of a path of one key (``temp``, the usual case), which :meth:`get` looks up
    directly; ``None`` for longer paths."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", f"field {self.text!r}")
        only = self.steps[0] if len(self.steps) == 1 else None
        object.__setattr__(self, "key", only if isinstance(only, str) else None)

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        """Parse ``text``; raise ``ValueError`` naming the problem for a malformed path."""
        if not isinstance(text, str) or not text.strip():
            msg = f"field path: expected a non-empty string, got {text!r}"
            raise ValueError(msg)
        steps: list[str | int] = []
        position = 0
        expect_key = True  # at the start or after a dot
        while position < len(text):
            match = _SEGMENT.match(text, position)
            if match is None:
                msg = f"field path {text!r}: unexpected {text[position]!r} at character {position}"
                raise ValueError(msg)
            if match.group("dot") is not None:
                if expect_key:
                    msg = f"field path {text!r}: empty key at character {position}"
                    raise ValueError(msg)
                expect_key = True
            elif match.group("index") is not None:
                if expect_key and steps:
                    msg = f"field path {text!r}: '.' before '[' at character {position}"
                    raise ValueError(msg)
                steps.append(int(match.group("index")))
                expect_key = False
            elif match.group("key") is not None:
                if not expect_key:
                    msg = f"field path {text!r}: missing '.' at character {position}"
                    raise ValueError(msg)
                steps.append(match.group("key"))
                expect_key = False
            else:
                quoted = match.group("dq") if match.group("dq") is not None else match.group("sq")
                steps.append(re.sub(r"\\(.)", r"\1", quoted))
                expect_key = False
            position = match.end()
        if expect_key:
            msg = f"field path {text!r}: ends with '.'"
            raise ValueError(msg)
        return cls(text, tuple(steps))

    def get(self, document: object, *, default: object = _MISSING) -> object:
        """The value at this path; ``DecodeError`` when absent (unless ``default`` is given)."""
        if self.key is not None and type(document) is dict:
            value = document.get(self.key, _MISSING)
            if value is not _MISSING:
                return value  # else the general path below says what is wrong
        node = document
        for number, step in enumerate(self.steps):
            if isinstance(step, int):
                if not isinstance(node, list):
                    msg = (
                        f"field {self.text!r}: expected a list at "
                        f"{self._prefix(number)!r}, got {kind(node)}"
                    )
                    raise DecodeError(msg)
                if not -len(node) <= step < len(node):
                    if default is not _MISSING:
                        return default
                    msg = (
                        f"field {self.text!r}: index {step} out of range, the "
                        f"list has {len(node)} items"
                    )
                    raise DecodeError(msg)
                node = node[step]
            else:
                if not isinstance(node, dict):
                    msg = (
                        f"field {self.text!r}: expected an object at "
                        f"{self._prefix(number)!r}, got {kind(node)}"
                    )
                    raise DecodeError(msg)
                if step not in node:
                    if default is not _MISSING:
                        return default
                    msg = f"field {self.text!r}: missing"
                    raise DecodeError(msg)
                node = node[step]
        return node

    def _prefix(self, count: int) -> str:
        if count == 0:
            return "(the payload)"
        return FieldPath.render(self.steps[:count])

    @staticmethod
    def render(steps: Sequence[str | int]) -> str:
        """Write ``steps`` back as path text."""
        out = ""
        for step in steps:
            if isinstance(step, int):
                out += f"[{step}]"
            elif re.fullmatch(r"[^.\[\]\s]+", step):  # whitespace quoted: " " alone would not parse
                out += ("." if out else "") + step
            else:
                out += '["' + step.replace("\\", "\\\\").replace('"', '\\"') + '"]'
        return out


def optional_path(text: str | None) -> FieldPath | None:
    """Parse ``text`` when given."""
    return None if text is None else FieldPath.parse(text)


def required_path(text: str | None, fmt: str, what: str) -> FieldPath:
    """Parse ``text``, which ``fmt`` cannot do without."""
    if text is None:
        msg = f"format {fmt!r} needs 'value' ({what})"
        raise ValueError(msg)
    return FieldPath.parse(text)
