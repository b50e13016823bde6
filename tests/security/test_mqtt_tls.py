"""The TLS client context and failure classification against a real TLS-only Mosquitto
with a password file and an ACL."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import pytest

from gateway.config import TlsConfig
from gateway.security import (
    classify_connack,
    classify_connection_error,
    classify_tls_error,
    client_ssl_context,
    parse_command,
)
from gateway.security.commands import AckCommand
from tests.security.clients import DEADLINE_S, TestClient, connected
from tests.security.conftest import COMMAND_TOPIC, PREFIX, Credentials, TlsMosquitto
from tests.security.pki import Pki
from tests.services import Mosquitto


def _tls(
    pki: Pki, *, ca: str = "ca", client: bool = False, check_hostname: bool = True
) -> TlsConfig:
    ca_files = {"ca": pki.ca.cert, "other_ca": pki.other_ca.cert}
    return TlsConfig(
        ca_file=ca_files[ca],
        cert_file=pki.client.cert if client else None,
        key_file=pki.client.key if client else None,
        check_hostname=check_hostname,
    )


def _handshake_error(
    server: TlsMosquitto, tls: TlsConfig, credentials: Credentials, host: str = "127.0.0.1"
) -> BaseException:
    client = TestClient("gateway", credentials.mqtt_gateway, client_ssl_context(tls))
    try:
        with pytest.raises(ssl.SSLError) as caught:
            client.connect(host, server.port)
    finally:
        client.close()
    return caught.value


def test_connects_with_the_right_ca_and_password(
    tls_mosquitto: TlsMosquitto, pki: Pki, credentials: Credentials
) -> None:
    context = client_ssl_context(_tls(pki))
    with connected("127.0.0.1", tls_mosquitto.port, "gateway", credentials.mqtt_gateway,
                   context) as gateway:
        gateway.subscribe(f"{PREFIX}/#")
        code = gateway.publish(f"{PREFIX}/status", b'{"state": "online"}')
        assert not code.is_failure
        gateway.received.wait_for(b'{"state": "online"}')
        sock = gateway.client.socket()
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.version() in {"TLSv1.2", "TLSv1.3"}


def test_localhost_name_is_checked_and_accepted(
    tls_mosquitto: TlsMosquitto, pki: Pki, credentials: Credentials
) -> None:
    with connected("localhost", tls_mosquitto.port, "gateway", credentials.mqtt_gateway,
                   client_ssl_context(_tls(pki))):
        pass


def test_wrong_ca_is_a_clear_fatal_reason(
    tls_mosquitto: TlsMosquitto, pki: Pki, credentials: Credentials
) -> None:
    error = _handshake_error(tls_mosquitto, _tls(pki, ca="other_ca"), credentials)
    failure = classify_connection_error(error)
    assert failure.kind == "untrusted"
    assert failure.fatal
    assert "not signed by a trusted CA" in failure.reason
    assert "tls.ca_file" in failure.reason
    assert "\n" not in failure.reason


def test_wrong_ca_is_refused_even_without_the_hostname_check(
    tls_mosquitto: TlsMosquitto, pki: Pki, credentials: Credentials
) -> None:
    error = _handshake_error(
        tls_mosquitto, _tls(pki, ca="other_ca", check_hostname=False), credentials
    )
    assert classify_connection_error(error).kind == "untrusted"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_certificate_for_another_host_is_a_clear_fatal_reason(
    tls_mosquitto_factory: Callable[..., TlsMosquitto],
    pki: Pki,
    credentials: Credentials,
    host: str,
) -> None:
    server = tls_mosquitto_factory(server_cert=pki.server_other_host)
    error = _handshake_error(server, _tls(pki), credentials, host=host)
    failure = classify_connection_error(error)
    assert failure.kind == "hostname"
    assert failure.fatal
    assert "for another host" in failure.reason
    assert host in failure.reason


def test_hostname_check_can_be_turned_off_but_the_chain_is_still_verified(
    tls_mosquitto_factory: Callable[..., TlsMosquitto], pki: Pki, credentials: Credentials
) -> None:
    server = tls_mosquitto_factory(server_cert=pki.server_other_host)
    with connected("127.0.0.1", server.port, "gateway", credentials.mqtt_gateway,
                   client_ssl_context(_tls(pki, check_hostname=False))):
        pass
    # The caller's switch alone also turns it off.
    context = client_ssl_context(_tls(pki), server_hostname_check=False)
    assert not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_expired_server_certificate_is_a_clear_fatal_reason(
    tls_mosquitto_factory: Callable[..., TlsMosquitto], pki: Pki, credentials: Credentials
) -> None:
    server = tls_mosquitto_factory(server_cert=pki.server_expired)
    error = _handshake_error(server, _tls(pki), credentials)
    failure = classify_connection_error(error)
    assert failure.kind == "expired"
    assert failure.fatal
    assert "has expired" in failure.reason


@pytest.mark.parametrize(
    ("username", "password_of"),
    [("gateway", lambda c: c.mqtt_gateway + "x"), ("nobody", lambda c: c.mqtt_gateway)],
)
def test_wrong_password_is_refused_in_the_connack(
    tls_mosquitto: TlsMosquitto,
    pki: Pki,
    credentials: Credentials,
    username: str,
    password_of: Callable[[Credentials], str],
) -> None:
    client = TestClient(username, password_of(credentials), client_ssl_context(_tls(pki)))
    try:
        code = client.connect("127.0.0.1", tls_mosquitto.port)
    finally:
        client.close()
    assert code.is_failure
    failure = classify_connack(code)
    assert failure.fatal
    assert failure.kind in {"credentials", "permission"}
    assert any(t in failure.reason for t in ("bad user name or password", "not authorized"))
    assert password_of(credentials) not in failure.reason


def test_anonymous_clients_are_refused(tls_mosquitto: TlsMosquitto, pki: Pki) -> None:
    client = TestClient(None, None, client_ssl_context(_tls(pki)))
    try:
        code = client.connect("127.0.0.1", tls_mosquitto.port)
    finally:
        client.close()
    assert code.is_failure
    assert classify_connack(code).fatal


def test_tls_to_a_plain_mqtt_port_is_a_protocol_reason(mosquitto: Mosquitto) -> None:
    client = TestClient(None, None, client_ssl_context(None))
    try:
        with pytest.raises(OSError) as caught:
            client.connect("127.0.0.1", mosquitto.port)
    finally:
        client.close()
    failure = classify_connection_error(caught.value)
    assert failure.kind == "protocol"
    assert "TLS port" in failure.reason


def _first_read_error(port: int, context: ssl.SSLContext) -> BaseException:
    """Handshake and read: with TLS 1.3 the server refuses a client certificate only after the
    client's side of the handshake has finished, so the refusal arrives on the first read."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as exc:
            return exc
    raise AssertionError("the server accepted a connection it should have refused")


def test_mutual_tls_with_a_client_certificate(
    tls_mosquitto_factory: Callable[..., TlsMosquitto], pki: Pki, credentials: Credentials
) -> None:
    server = tls_mosquitto_factory(require_certificate=True)
    with connected("127.0.0.1", server.port, "gateway", credentials.mqtt_gateway,
                   client_ssl_context(_tls(pki, client=True))):
        pass
    missing = _first_read_error(server.port, client_ssl_context(_tls(pki)))
    failure = classify_connection_error(missing)
    assert failure.kind == "client_cert", failure
    assert failure.fatal


def test_client_certificate_from_another_ca_is_refused(
    tls_mosquitto_factory: Callable[..., TlsMosquitto], pki: Pki
) -> None:
    server = tls_mosquitto_factory(require_certificate=True)
    tls = TlsConfig(
        ca_file=pki.ca.cert, cert_file=pki.client_other_ca.cert, key_file=pki.client_other_ca.key
    )
    failure = classify_connection_error(_first_read_error(server.port, client_ssl_context(tls)))
    assert failure.kind == "client_cert", failure
    assert "client certificate" in failure.reason


def test_acl_refuses_a_command_from_a_user_without_permission(
    tls_mosquitto: TlsMosquitto, pki: Pki, credentials: Credentials
) -> None:
    context = client_ssl_context(_tls(pki))
    port = tls_mosquitto.port
    forged = AckCommand(alert_id="forged-1", by="sensor").to_payload()
    genuine = AckCommand(alert_id="genuine-1", by="dashboard@test").to_payload()
    with (
        connected("127.0.0.1", port, "gateway", credentials.mqtt_gateway, context) as gateway,
        connected("127.0.0.1", port, "sensor", credentials.mqtt_sensor, context) as sensor,
        connected("127.0.0.1", port, "dashboard", credentials.mqtt_dashboard, context) as dash,
    ):
        gateway.subscribe(COMMAND_TOPIC)
        refused = sensor.publish(COMMAND_TOPIC, forged)
        # MQTT 5: the broker answers the forged publish with "Not authorized".
        assert refused.is_failure
        assert "authorized" in str(refused).lower()
        # The dashboard's command is published after the refused one was answered, so once it
        # has arrived the forged one would have too.
        assert not dash.publish(COMMAND_TOPIC, genuine).is_failure
        messages = gateway.received.wait_for(genuine)
    assert messages == [(COMMAND_TOPIC, genuine)]
    assert parse_command(messages[0][1]) == AckCommand("genuine-1", "dashboard@test")


def test_the_gateway_user_cannot_publish_commands_to_itself(
    tls_mosquitto: TlsMosquitto, pki: Pki, credentials: Credentials
) -> None:
    context = client_ssl_context(_tls(pki))
    with connected("127.0.0.1", tls_mosquitto.port, "gateway", credentials.mqtt_gateway,
                   context) as gateway:
        code = gateway.publish(COMMAND_TOPIC, AckCommand("a1", "gateway").to_payload())
    assert code.is_failure


def test_a_sensor_cannot_publish_gateway_outputs(
    tls_mosquitto: TlsMosquitto, pki: Pki, credentials: Credentials
) -> None:
    context = client_ssl_context(_tls(pki))
    with connected("127.0.0.1", tls_mosquitto.port, "sensor", credentials.mqtt_sensor,
                   context) as sensor:
        code = sensor.publish(f"{PREFIX}/alerts", b"{}")
    assert code.is_failure


def test_classify_tls_error_is_one_line_without_secrets(pki: Pki) -> None:
    secret = "s3cret-pw"
    exc = ConnectionError(f"Error connecting with password {secret}\nsecond line")
    reason = classify_tls_error(exc, secrets=[secret])
    assert secret not in reason
    assert "\n" not in reason
