"""Strict command parsing (property-tested) and the command rate limiter (injected clock)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.security.commands import (
    MAX_BY_CHARS,
    MAX_COMMAND_BYTES,
    AckCommand,
    CommandError,
    CommandGate,
    CommandRateLimiter,
    command_topic,
    parse_command,
)

alert_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")
senders = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]),
    min_size=1,
    max_size=MAX_BY_CHARS,
).filter(str.isprintable)
ack_commands = st.builds(AckCommand, alert_id=alert_ids, by=senders)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


def _outcome(payload: bytes) -> AckCommand | CommandError:
    """The command, or the CommandError; any other exception fails the test."""
    try:
        return parse_command(payload)
    except CommandError as exc:
        return exc


def _check_outcome(outcome: AckCommand | CommandError) -> None:
    if isinstance(outcome, CommandError):
        assert outcome.reason
        assert "\n" not in outcome.reason
    else:
        assert isinstance(outcome, AckCommand)


def _refusal(payload: bytes) -> str:
    with pytest.raises(CommandError) as caught:
        parse_command(payload)
    reason = caught.value.reason
    assert reason
    assert "\n" not in reason
    return reason


@given(st.binary(max_size=2 * MAX_COMMAND_BYTES))
def test_arbitrary_bytes_give_a_command_or_a_command_error(payload: bytes) -> None:
    _check_outcome(_outcome(payload))


@given(json_values)
def test_arbitrary_json_gives_a_command_or_a_command_error(value: object) -> None:
    _check_outcome(_outcome(json.dumps(value).encode()))


@given(
    st.fixed_dictionaries(
        {"command": st.just("ack") | st.text(max_size=8)},
        optional={"alert_id": json_values, "by": json_values, "extra": json_values},
    )
)
def test_near_miss_objects_give_a_command_or_a_command_error(body: dict[str, object]) -> None:
    outcome = _outcome(json.dumps(body).encode())
    _check_outcome(outcome)
    if isinstance(outcome, AckCommand):
        assert outcome.alert_id == body["alert_id"]
        assert outcome.by == body["by"]


@settings(max_examples=300)
@given(ack_commands)
def test_valid_commands_round_trip(command: AckCommand) -> None:
    assert parse_command(command.to_payload()) == command


@given(ack_commands)
def test_key_order_and_ascii_escapes_do_not_matter(command: AckCommand) -> None:
    body = {"by": command.by, "alert_id": command.alert_id, "command": "ack"}
    assert parse_command(json.dumps(body, ensure_ascii=True).encode()) == command


def test_the_architecture_example_is_accepted() -> None:
    payload = b'{"command": "ack", "alert_id": "a1b2c3", "by": "dashboard@host"}'
    assert parse_command(payload) == AckCommand(alert_id="a1b2c3", by="dashboard@host")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1]", "expected a JSON object, got an array"),
        (b'"ack"', "got a string"),
        (b"{}", "field 'command' is missing"),
        (b'{"command": 1}', "expected a string, got a number"),
        (b'{"command": "reboot"}', "unknown command 'reboot'"),
        (b'{"command": "ack", "by": "x"}', "field 'alert_id' is missing"),
        (b'{"command": "ack", "alert_id": "a"}', "field 'by' is missing"),
        (b'{"command": "ack", "alert_id": 5, "by": "x"}', "'alert_id': expected a string"),
        (b'{"command": "ack", "alert_id": "a/b", "by": "x"}', "'alert_id': expected 1-128"),
        (b'{"command": "ack", "alert_id": "", "by": "x"}', "'alert_id': expected 1-128"),
        (b'{"command": "ack", "alert_id": "a", "by": ""}', "expected 1-64 characters, got 0"),
        (b'{"command": "ack", "alert_id": "a", "by": "x\\n"}', "control"),
        (b'{"command": "ack", "alert_id": "a", "by": "x\\u202e"}', "control"),
        (b'{"command": "ack", "alert_id": "a", "by": "x", "as": "root"}', "unknown field 'as'"),
        (b'{"command": "ack", "command": "ack", "alert_id": "a", "by": "x"}', "more than once"),
        (b'{"command": "ack", "alert_id": NaN, "by": "x"}', "not valid JSON"),
        (b"[" * 1000, "not valid JSON"),
        (b'{"command": "ack", "alert_id": "a", "by": "x"} trailing', "not valid JSON"),
    ],
)
def test_refusals_name_what_was_wrong(payload: bytes, expected: str) -> None:
    assert expected in _refusal(payload)


def test_oversized_payloads_are_refused_before_parsing() -> None:
    body = {"command": "ack", "alert_id": "a", "by": "x", "pad": "y" * MAX_COMMAND_BYTES}
    assert "exceeds the limit" in _refusal(json.dumps(body).encode())


def test_reasons_do_not_echo_long_or_hostile_values() -> None:
    hostile = "\x1b[31m" + "A" * 500
    reason = _refusal(json.dumps({"command": hostile}).encode())
    assert "\x1b" not in reason
    assert len(reason) < 120


class FakeClock:
    def __init__(self, start_ms: int = 1_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    limiter = CommandRateLimiter(rate_per_s=2.0, burst=3, now_ms=clock)
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after_ms() == 500
    clock.advance(499)
    assert not limiter.try_acquire()
    clock.advance(1)
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    clock.advance(60_000)  # a long pause refills only up to the burst
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert (limiter.allowed, limiter.refused) == (7, 4)


def test_rate_limiter_gains_nothing_from_a_clock_going_back() -> None:
    clock = FakeClock()
    limiter = CommandRateLimiter(rate_per_s=1.0, burst=1, now_ms=clock)
    assert limiter.try_acquire()
    clock.advance(-10_000)
    assert not limiter.try_acquire()
    clock.advance(999)
    assert not limiter.try_acquire()
    clock.advance(1)
    assert limiter.try_acquire()


@given(st.lists(st.integers(min_value=0, max_value=5_000), max_size=200))
def test_rate_limiter_never_exceeds_burst_plus_rate_times_time(steps: list[int]) -> None:
    clock = FakeClock()
    limiter = CommandRateLimiter(rate_per_s=5.0, burst=4, now_ms=clock)
    allowed = 0
    for step in steps:
        clock.advance(step)
        allowed += limiter.try_acquire()
    assert allowed <= 4 + 5.0 * sum(steps) / 1000


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_rate_limiter_rejects_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        CommandRateLimiter(rate_per_s=rate, burst=burst)


def test_gate_accepts_only_its_own_topic_then_limits_then_parses() -> None:
    clock = FakeClock()
    gate = CommandGate("edge-gateway/gw1", CommandRateLimiter(1.0, 2, now_ms=clock))
    good = AckCommand("a1", "dash").to_payload()
    assert gate.topic == command_topic("edge-gateway/gw1") == "edge-gateway/gw1/commands"
    with pytest.raises(CommandError, match="only on 'edge-gateway/gw1/commands'"):
        gate.check("edge-gateway/gw2/commands", good)
    assert gate.check(gate.topic, good) == AckCommand("a1", "dash")
    with pytest.raises(CommandError, match="unknown command"):
        gate.check(gate.topic, b'{"command": "format-disk"}')
    with pytest.raises(CommandError, match="rate limit"):
        gate.check(gate.topic, good)
    clock.advance(1_000)
    assert gate.check(gate.topic, good).alert_id == "a1"
    assert gate.accepted == 2
    assert gate.refused == {"topic": 1, "rate": 1, "invalid": 1}
