"""Classify connection failures by what the operator must do.

The runtime turns any exception (or refused MQTT CONNACK) from connecting to the broker, the
upstream broker or Redis into a :class:`ConnectionFailure`:

    ConnectionFailure(kind, reason, fatal)
      fatal = True   the configuration or a certificate must change; retrying cannot help
        untrusted      server certificate not signed by the configured CA (wrong CA)
        hostname       server certificate is for another host
        expired        server certificate expired (or not yet valid)
        client_cert    the server refused our client certificate, or wants one
        protocol       the server does not speak TLS (1.2+) on that port
        credentials    user name / password refused (MQTT 0x86/rc 4, Redis WRONGPASS/NOAUTH)
        permission     authenticated but not allowed (MQTT 0x87/rc 5, Redis NOPERM)
        rejected       any other refusal in the CONNACK (client id, protocol version, banned)
      fatal = False  retry with backoff (and buffer)
        unreachable    refused, reset, timed out, name does not resolve, server busy
        unknown        anything else

At start a fatal failure ends the gateway with ``reason`` on one line and a non-zero exit; a
later one is backed off (long cap, no retry storm) and reported in status. ``reason`` never
holds a secret (``secrets`` are redacted from any text taken from the exception) and never a
traceback.

paho's own reconnect loop drops the exception (``on_connect_fail`` has none): connect and
reconnect in an executor (as aiomqtt does) and classify what ``connect()`` raises; for a
refused CONNACK raise :class:`ConnectRefused` from ``on_connect`` (or pass the reason code).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from gateway.security.redact import redact

FailureKind = Literal[
    "untrusted",
    "hostname",
    "expired",
    "client_cert",
    "protocol",
    "credentials",
    "permission",
    "rejected",
    "unreachable",
    "unknown",
]
FATAL_KINDS: frozenset[FailureKind] = frozenset(
    {"untrusted", "hostname", "expired", "client_cert", "protocol", "credentials",
     "permission", "rejected"}
)


@dataclass(frozen=True, slots=True)
class ConnectionFailure:
    """Why a connection failed and whether retrying can help."""

    kind: FailureKind
    reason: str
    """One line for the operator, without secrets."""

    @property
    def fatal(self) -> bool:
        """The configuration or a certificate must change; retrying cannot help."""
        return self.kind in FATAL_KINDS

    def __str__(self) -> str:
        return self.reason


@runtime_checkable
class _ReasonCodeLike(Protocol):
    """paho's ``ReasonCode``: an int ``value`` and a name as ``str()``."""

    value: int


class ConnectRefused(ConnectionError):
    """The MQTT broker answered CONNACK with a failure reason code.

    ``code`` is the MQTT 5 reason code (or an MQTT 3.1.1 return code 1-5), ``name`` the
    broker's/paho's name for it.
    """

    def __init__(self, code: int, name: str = "") -> None:
        super().__init__(f"CONNACK {code} {name}".strip())
        self.code = code
        self.name = name


# MQTT 3.1.1 CONNACK return codes as MQTT 5 reason codes.
_V3_TO_V5 = {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}
_CONNACK: dict[int, tuple[FailureKind, str]] = {
    0x80: ("rejected", "refused the connection (unspecified error)"),
    0x81: ("rejected", "refused the connection as malformed"),
    0x82: ("rejected", "refused the connection (protocol error)"),
    0x83: ("rejected", "refused the connection (implementation specific error)"),
    0x84: ("rejected", "does not support this MQTT version (set mqtt.protocol)"),
    0x85: ("rejected", "refused the client id (check mqtt.client_id)"),
    0x86: ("credentials", "refused the user name or password (bad user name or password)"),
    0x87: ("permission", "refused the connection: not authorized (check the user and the ACL)"),
    0x88: ("unreachable", "is unavailable"),
    0x89: ("unreachable", "is busy"),
    0x8A: ("rejected", "has banned this client"),
    0x8C: ("credentials", "refused the authentication method"),
    0x9C: ("rejected", "asks to use another server"),
    0x9D: ("rejected", "has moved to another server"),
    0x9F: ("unreachable", "refused: connection rate exceeded"),
}

# OpenSSL X509_V_ERR_* codes of a failed server verification.
_UNTRUSTED_CODES = {2, 18, 19, 20, 21, 27, 28}
_EXPIRED_CODES = {9, 10}
_HOSTNAME_CODES = {62, 63, 64}


def classify_tls_error(exc: BaseException, *, secrets: Iterable[str | None] = ()) -> str:
    """One line saying why a connection failed and what to fix (see the module docstring)."""
    return classify_connection_error(exc, secrets=secrets).reason


def classify_connack(code: int | _ReasonCodeLike, name: str = "") -> ConnectionFailure:
    """Classify a failed MQTT CONNACK (paho ``ReasonCode`` or int, 3.1.1 or 5)."""
    if isinstance(code, _ReasonCodeLike):
        name = name or str(code)
        value = int(code.value)
    else:
        value = int(code)
    value = _V3_TO_V5.get(value, value)
    kind, text = _CONNACK.get(value, ("rejected", f"refused the connection ({name or value})"))
    return ConnectionFailure(kind, f"the MQTT broker {text} [CONNACK {value:#04x}]")


def classify_connection_error(
    exc: BaseException, *, secrets: Iterable[str | None] = ()
) -> ConnectionFailure:
    """Classify an exception from connecting to the MQTT broker or to Redis.

    The exception's ``__cause__``/``__context__`` chain is searched (redis-py wraps the
    ``ssl`` error in its own ``ConnectionError``); text taken from it is redacted of
    ``secrets`` and cut to one line.
    """
    secret_list = [s for s in secrets if s]
    for link in _chain(exc):
        found = _classify_one(link)
        if found is not None:
            return ConnectionFailure(found.kind, redact(found.reason, secret_list))
    text = _one_line(exc)
    found = _classify_text(text)
    if found is not None:
        return ConnectionFailure(found.kind, redact(found.reason, secret_list))
    return ConnectionFailure("unknown", redact(f"{type(exc).__name__}: {text}", secret_list))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify_one(exc: BaseException) -> ConnectionFailure | None:
    if isinstance(exc, ConnectRefused):
        return classify_connack(exc.code, exc.name)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _verification(exc.verify_code, exc.verify_message or "")
    if isinstance(exc, ssl.SSLEOFError) and _in_tls_handshake(exc):
        return ConnectionFailure(
            "protocol",
            "the server closed the connection during the TLS handshake: is the port a TLS "
            "port, and does the server accept TLS 1.2+ and our client certificate?",
        )
    if isinstance(exc, ssl.SSLError):
        return _classify_text(f"{exc.reason or ''} {exc}") or ConnectionFailure(
            "protocol", f"TLS handshake failed: {_one_line(exc)}"
        )
    redis_failure = _classify_redis(exc)
    if redis_failure is not None:
        return redis_failure
    if isinstance(exc, socket.gaierror):
        return ConnectionFailure("unreachable", "the host name does not resolve (check host/url)")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionFailure(
            "unreachable", "connection refused: nothing listens on that host and port"
        )
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError) and (
        _in_tls_handshake(exc)
    ):
        return ConnectionFailure(
            "protocol",
            "the server closed the connection during the TLS handshake: is the port a TLS "
            "port, and does the server accept TLS 1.2+ and our client certificate?",
        )
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return ConnectionFailure("unreachable", "the server closed the connection")
    if isinstance(exc, TimeoutError):
        return ConnectionFailure("unreachable", "timed out connecting to the server")
    return None


_HANDSHAKE_FRAMES = frozenset({"do_handshake", "_do_handshake", "_start_handshake"})


def _in_tls_handshake(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in _HANDSHAKE_FRAMES:
            return True
        tb = tb.tb_next
    return False


def _classify_redis(exc: BaseException) -> ConnectionFailure | None:
    try:
        from redis import exceptions as redis_exc
    except ImportError:  # pragma: no cover - redis is a dependency
        return None
    if isinstance(exc, redis_exc.NoPermissionError):
        return ConnectionFailure(
            "permission",
            "Redis refused a command for this ACL user (NOPERM): give the user the commands "
            "and keys it needs (see docs/security.md)",
        )
    # redis-py 8 keeps the server's error code in ``status_code``; older ones only the text.
    status = str(getattr(exc, "status_code", None) or "")
    text = str(exc)
    if isinstance(exc, redis_exc.ResponseError | redis_exc.ConnectionError):
        if status == "NOPERM" or text.startswith("NOPERM"):
            return _classify_redis(redis_exc.NoPermissionError(text))
        if status in {"NOAUTH", "WRONGPASS"} or text.startswith(("NOAUTH", "WRONGPASS")):
            return _redis_auth(status or text)
        if text.startswith("invalid username-password"):
            return _redis_auth(text)
    if isinstance(
        exc, redis_exc.AuthenticationError | redis_exc.AuthenticationWrongNumberOfArgsError
    ):
        return _redis_auth(text)
    if isinstance(exc, redis_exc.TimeoutError):
        return ConnectionFailure("unreachable", "timed out connecting to Redis")
    return None


def _redis_auth(text: str) -> ConnectionFailure:
    if text.startswith("NOAUTH") or "Authentication required" in text or "HELLO must" in text:
        return ConnectionFailure(
            "credentials",
            "Redis requires authentication (NOAUTH): set redis.username and "
            "redis.password or password_file",
        )
    return ConnectionFailure(
        "credentials",
        "Redis refused the user name or password (WRONGPASS, or the ACL user "
        "is disabled): check redis.username and redis.password",
    )


def _verification(code: int, message: str) -> ConnectionFailure:
    if code in _HOSTNAME_CODES:
        return ConnectionFailure(
            "hostname",
            f"TLS: the server certificate is for another host ({message.rstrip('.')}): connect "
            "by a name the certificate lists, or fix the certificate",
        )
    if code in _EXPIRED_CODES:
        what = "has expired" if code == 10 else "is not valid yet (check the clock)"
        return ConnectionFailure(
            "expired", f"TLS: the server certificate {what} ({message}): renew it"
        )
    if code in _UNTRUSTED_CODES:
        return ConnectionFailure(
            "untrusted",
            f"TLS: the server certificate is not signed by a trusted CA ({message}): check "
            "tls.ca_file names the CA that signed the server's certificate",
        )
    return ConnectionFailure(
        "untrusted", f"TLS: the server certificate was rejected ({message or f'code {code}'})"
    )


# Text of OpenSSL errors (also found inside redis-py's ConnectionError messages).
_TEXT_RULES: tuple[tuple[tuple[str, ...], FailureKind, str], ...] = (
    (("hostname mismatch", "ip address mismatch"), "hostname",
     "TLS: the server certificate is for another host: connect by a name the certificate "
     "lists, or fix the certificate"),
    (("certificate has expired",), "expired",
     "TLS: the server certificate has expired: renew it"),
    (("certificate is not yet valid",), "expired",
     "TLS: the server certificate is not valid yet (check the clock)"),
    (("unable to get local issuer", "self-signed certificate", "self signed certificate",
      "unable to get issuer", "unable to verify the first certificate"), "untrusted",
     "TLS: the server certificate is not signed by a trusted CA: check tls.ca_file names the "
     "CA that signed the server's certificate"),
    (("alert_certificate_expired", "sslv3_alert_certificate_expired"), "client_cert",
     "TLS: the server refused our client certificate as expired: renew tls.cert_file"),
    (("alert_unknown_ca", "alert_bad_certificate", "alert_certificate_unknown",
      "alert_unsupported_certificate", "alert_certificate_revoked"), "client_cert",
     "TLS: the server refused our client certificate (tls.cert_file): it must be signed by a "
     "CA the server trusts"),
    (("certificate_required", "peer did not return a certificate"), "client_cert",
     "TLS: the server requires a client certificate: set tls.cert_file and tls.key_file"),
    (("wrong_version_number", "wrong version number", "record layer failure",
      "packet length too long", "http_request"), "protocol",
     "TLS: the server does not speak TLS on this port (plain MQTT/Redis port?)"),
    (("alert_handshake_failure",), "protocol",
     "TLS: the server refused the handshake (it may require a client certificate: "
     "tls.cert_file/key_file, or share no cipher with us)"),
    (("unsupported_protocol", "alert_protocol_version", "no protocols available"), "protocol",
     "TLS: the server offers no TLS version the gateway accepts (TLS 1.2 or newer)"),
    (("noauth",), "credentials",
     "Redis requires authentication (NOAUTH): set redis.username and redis.password"),
    (("wrongpass", "invalid username-password"), "credentials",
     "Redis refused the user name or password (WRONGPASS, or the ACL user is disabled)"),
    (("noperm",), "permission",
     "Redis refused a command for this ACL user (NOPERM)"),
    (("connection refused",), "unreachable",
     "connection refused: nothing listens on that host and port"),
    (("timed out", "timeout"), "unreachable", "timed out connecting to the server"),
)


def _classify_text(text: str) -> ConnectionFailure | None:
    lowered = text.lower()
    for needles, kind, reason in _TEXT_RULES:
        if any(n in lowered for n in needles):
            return ConnectionFailure(kind, reason)
    return None


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
