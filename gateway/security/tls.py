"""TLS client contexts for every outgoing connection (local MQTT, upstream MQTT, Redis).

One function builds the :class:`ssl.SSLContext` from a :class:`~gateway.config.TlsConfig`:

- the server is always verified (``CERT_REQUIRED``): against ``ca_file`` when given (and only
  against it, so a private CA is not widened by the system store), else the system store;
- the host name is checked unless the config (``check_hostname = false``) or the caller turns
  it off;
- TLS 1.2 is the minimum version (OWASP IoT: no obsolete protocols);
- ``cert_file`` + ``key_file`` add a client certificate for mutual TLS.

A file that cannot be used raises :class:`TlsSetupError` with one line naming the key, the
file and what is wrong with it, never a traceback and never a passphrase prompt.

paho: :func:`use_with_paho` (``tls_set_context``, and ``tls_insecure_set`` to match the
context's host name check, which paho 2.x also infers itself); after a failed handshake
:func:`close_sockets_of` closes the socket paho leaves open.
redis-py takes ``ssl_*`` keyword arguments instead of a context: :func:`redis_ssl_kwargs` gives
them for the same config (after checking the files the same way).
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

from gateway.config import TlsConfig

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
"""Oldest protocol version the gateway speaks."""


class TlsSetupError(ValueError):
    """A TLS file that cannot be used; ``str(exc)`` is one line for the operator."""


def client_ssl_context(
    cfg: TlsConfig | None, *, server_hostname_check: bool = True
) -> ssl.SSLContext:
    """Build the client context for a TLS connection described by ``cfg``.

    Args:
        cfg: the ``tls`` section of a connection; ``None`` means TLS with the system CA store
            and no client certificate (for example a ``rediss://`` URL without a section).
        server_hostname_check: ``False`` turns the host name check off whatever the config
            says (the certificate chain is still verified). Both this and
            ``cfg.check_hostname`` must be true for the check to happen.

    Raises:
        TlsSetupError: a CA, certificate or key file is missing, unreadable, not PEM, does not
            match, or the key is encrypted.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname on
    context.minimum_version = MINIMUM_VERSION
    if cfg is None or cfg.ca_file is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        _load_ca(context, Path(cfg.ca_file))
    if cfg is not None and cfg.cert_file is not None and cfg.key_file is not None:
        _load_client_cert(context, Path(cfg.cert_file), Path(cfg.key_file))
    context.check_hostname = server_hostname_check and (cfg is None or cfg.check_hostname)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def use_with_paho(client: Any, context: ssl.SSLContext) -> None:
    """Install ``context`` on a ``paho.mqtt.client.Client`` (before ``connect``)."""
    client.tls_set_context(context)
    if not context.check_hostname:
        # The chain is still verified; this only keeps paho from checking the name itself.
        client.tls_insecure_set(True)


def close_sockets_of(exc: BaseException) -> None:
    """Close the sockets left open in the frames of ``exc``'s traceback.

    paho's ``connect()`` does not close its socket when the TLS handshake fails; call this
    where such an exception is caught, or each refused attempt leaks a file descriptor until
    the exception is garbage-collected (with a ``ResourceWarning``).
    """
    tb = exc.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, socket.socket) and value.fileno() != -1:
                value.close()
        tb = tb.tb_next


def redis_ssl_kwargs(
    cfg: TlsConfig | None, *, server_hostname_check: bool = True
) -> dict[str, Any]:
    """The redis-py ``ssl_*`` keyword arguments equivalent to :func:`client_ssl_context`.

    For ``redis.asyncio.Redis(..., ssl=True, **kwargs)``, ``Redis.from_url("rediss://...",
    **kwargs)`` and ``RedisCluster``. The files are checked first, so a bad file fails here
    with one line rather than inside redis-py (or with a passphrase prompt).

    Note: redis-py builds its context with :func:`ssl.create_default_context`, which also
    trusts the system store next to ``ca_file``.

    Raises:
        TlsSetupError: as :func:`client_ssl_context`.
    """
    client_ssl_context(cfg, server_hostname_check=server_hostname_check)
    check = server_hostname_check and (cfg is None or cfg.check_hostname)
    kwargs: dict[str, Any] = {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": check,
        "ssl_min_version": MINIMUM_VERSION,
    }
    if cfg is not None:
        if cfg.ca_file is not None:
            kwargs["ssl_ca_certs"] = str(cfg.ca_file)
        if cfg.cert_file is not None and cfg.key_file is not None:
            kwargs["ssl_certfile"] = str(cfg.cert_file)
            kwargs["ssl_keyfile"] = str(cfg.key_file)
    return kwargs


def _load_ca(context: ssl.SSLContext, path: Path) -> None:
    _readable("ca_file", path)
    try:
        context.load_verify_locations(cafile=str(path))
    except ssl.SSLError:
        msg = (
            f"tls.ca_file {str(path)!r} holds no PEM certificate "
            "(expected '-----BEGIN CERTIFICATE-----')"
        )
        raise TlsSetupError(msg) from None


def _load_client_cert(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    _readable("cert_file", cert)
    _readable("key_file", key)
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_passphrase)
    except _EncryptedKeyError:
        msg = (
            f"tls.key_file {str(key)!r} is encrypted; give an unencrypted key and protect it "
            "with file permissions (chmod 600)"
        )
        raise TlsSetupError(msg) from None
    except ssl.SSLError as exc:
        raise TlsSetupError(_cert_chain_problem(cert, key, exc)) from None


class _EncryptedKeyError(Exception):
    pass


def _no_passphrase() -> bytes:
    # OpenSSL asks for a passphrase only for an encrypted key; never prompt on a terminal.
    raise _EncryptedKeyError


def _cert_chain_problem(cert: Path, key: Path, exc: ssl.SSLError) -> str:
    if b"-----BEGIN CERTIFICATE-----" not in _head(cert):
        return (
            f"tls.cert_file {str(cert)!r} holds no PEM certificate "
            "(expected '-----BEGIN CERTIFICATE-----')"
        )
    if b"PRIVATE KEY-----" not in _head(key):
        return (
            f"tls.key_file {str(key)!r} holds no PEM private key "
            "(expected '-----BEGIN PRIVATE KEY-----')"
        )
    if "KEY_VALUES_MISMATCH" in (exc.reason or "").upper():
        return f"tls.key_file {str(key)!r} is not the private key of tls.cert_file {str(cert)!r}"
    detail = (exc.reason or exc.strerror or type(exc).__name__).replace("_", " ").lower()
    return f"tls.cert_file {str(cert)!r} / tls.key_file {str(key)!r} cannot be used: {detail}"


def _head(path: Path, limit: int = 1 << 20) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(limit)
    except OSError:
        return b""


def _readable(name: str, path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        msg = f"tls.{name} {str(path)!r} cannot be read: {exc.strerror or exc}"
        raise TlsSetupError(msg) from None
