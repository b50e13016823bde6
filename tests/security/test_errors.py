"""Classification of connection failures that need no server to reproduce."""

from __future__ import annotations

import socket
import ssl

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from redis import exceptions as redis_exc

from gateway.security.errors import (
    ConnectRefused,
    classify_connack,
    classify_connection_error,
    classify_tls_error,
)


@pytest.mark.parametrize(
    ("code", "kind", "text"),
    [
        (4, "credentials", "bad user name or password"),
        (5, "permission", "not authorized"),
        (0x86, "credentials", "bad user name or password"),
        (0x87, "permission", "not authorized"),
        (2, "rejected", "client id"),
        (1, "rejected", "MQTT version"),
        (3, "unreachable", "unavailable"),
        (0x89, "unreachable", "busy"),
        (0x8A, "rejected", "banned"),
        (0x99, "rejected", "0x99"),
    ],
)
def test_connack_codes(code: int, kind: str, text: str) -> None:
    failure = classify_connack(code)
    assert failure.kind == kind
    assert text in failure.reason
    assert failure.fatal == (kind != "unreachable")


def test_paho_reason_codes_and_connect_refused() -> None:
    code = ReasonCode(PacketTypes.CONNACK, "Not authorized")
    assert classify_connack(code).kind == "permission"
    assert classify_connection_error(ConnectRefused(code.value, str(code))).kind == "permission"
    wrapped = RuntimeError("connect failed")
    wrapped.__cause__ = ConnectRefused(134)
    assert classify_connection_error(wrapped).kind == "credentials"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "unreachable"),
        (socket.gaierror(-2, "Name or service not known"), "unreachable"),
        (TimeoutError(), "unreachable"),
        (redis_exc.TimeoutError("Timeout connecting to server"), "unreachable"),
        (redis_exc.AuthenticationError("invalid username-password pair"), "credentials"),
        (redis_exc.ResponseError("NOAUTH Authentication required."), "credentials"),
        (redis_exc.ResponseError("WRONGPASS invalid username-password pair"), "credentials"),
        (redis_exc.NoPermissionError("this user has no permissions"), "permission"),
        (ValueError("something else"), "unknown"),
        (
            redis_exc.ConnectionError(
                "Error 1 connecting to 127.0.0.1:6380. [SSL: CERTIFICATE_VERIFY_FAILED] "
                "certificate verify failed: unable to get local issuer certificate."
            ),
            "untrusted",
        ),
        (redis_exc.ConnectionError("... certificate has expired ..."), "expired"),
        (redis_exc.ConnectionError("... Hostname mismatch, certificate ..."), "hostname"),
        (redis_exc.ConnectionError("Error 111 connecting. Connection refused."), "unreachable"),
    ],
)
def test_exceptions(exc: BaseException, kind: str) -> None:
    failure = classify_connection_error(exc)
    assert failure.kind == kind, failure
    assert "\n" not in failure.reason


def test_verification_codes() -> None:
    def verify(code: int, message: str) -> ssl.SSLCertVerificationError:
        exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
        exc.verify_code = code
        exc.verify_message = message
        return exc

    assert classify_connection_error(verify(20, "unable to get local issuer")).kind == "untrusted"
    assert classify_connection_error(verify(18, "self-signed certificate")).kind == "untrusted"
    assert classify_connection_error(verify(10, "certificate has expired")).kind == "expired"
    not_yet = classify_connection_error(verify(9, "certificate is not yet valid"))
    assert not_yet.kind == "expired"
    assert "clock" in not_yet.reason
    assert classify_connection_error(verify(62, "Hostname mismatch")).kind == "hostname"


def test_unknown_errors_are_one_line_and_redacted() -> None:
    exc = RuntimeError("failed for rediss://gw:hunter2@host:6380\nwith s3cret in\n it")
    reason = classify_tls_error(exc, secrets=["s3cret", None])
    assert reason == "RuntimeError: failed for rediss://gw:***@host:6380 with *** in it"
