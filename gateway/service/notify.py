"""Talk to systemd: the ``sd_notify(3)`` protocol, implemented directly (no libsystemd).

systemd passes a ``Type=notify`` service the address of a unix datagram socket in
``NOTIFY_SOCKET``: a file-system path (``/run/systemd/notify``) or, when it starts with ``@``,
a name in the abstract namespace. Each notification is one datagram of newline-separated
``KEY=VALUE`` lines:

======================  =================================================================
``READY=1``             start-up finished: broker connected, state restored, subscribed
``STATUS=...``          one-line summary shown by ``systemctl status``
``WATCHDOG=1``          keep-alive; missing for ``WatchdogSec`` gets the service killed
``RELOADING=1``         a reload started (with ``MONOTONIC_USEC=``); ``READY=1`` ends it
``STOPPING=1``          shutdown started
``EXTEND_TIMEOUT_USEC`` the current start/stop step needs this much more time
======================  =================================================================

``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, which must be our pid when set) tell us the watchdog
timeout; systemd recommends pinging at half of it. Without ``NOTIFY_SOCKET`` (run by hand,
in tests) every method is a no-op that returns ``False``.

A notification never raises into the caller: a failed send is logged once as a warning (and
once more, at info, when sending works again) and reported by the return value.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Final

__all__ = ["SystemdNotifier"]

_log = logging.getLogger(__name__)

_SEND_TIMEOUT_S: Final = 1.0
"""Upper bound of one send: a full notify socket must not stall the event loop for long."""


class SystemdNotifier:
    """Sends notifications to the service manager named by ``NOTIFY_SOCKET``.

    Args:
        environ: where to read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``;
            ``os.environ`` when absent.
        unset_environment: remove those three variables from ``environ`` after reading them,
            so that child processes do not inherit them (like ``sd_notify(unset_environment=1)``).

    The object is thread-safe and cheap to call from the event loop: a send is one
    ``sendto`` on a datagram socket with a short timeout.
    """

    def __init__(
        self,
        environ: MutableMapping[str, str] | None = None,
        *,
        unset_environment: bool = False,
    ) -> None:
        env: MutableMapping[str, str] = os.environ if environ is None else environ
        self._address: str | bytes | None = _parse_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec: int | None = _parse_watchdog(env)
        if unset_environment:
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                env.pop(name, None)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failing = False
        self._closed = False

    # -- state ------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True when a service manager listens (``NOTIFY_SOCKET`` was set and usable)."""
        return self._address is not None and not self._closed

    def watchdog_timeout(self) -> float | None:
        """The watchdog timeout in seconds (``WATCHDOG_USEC``), or None when there is none."""
        if self._watchdog_usec is None or not self.enabled:
            return None
        return self._watchdog_usec / 1_000_000

    def watchdog_interval(self) -> float | None:
        """How often to send ``WATCHDOG=1``, in seconds: half the watchdog timeout.

        None when systemd does not watch us (no ``WATCHDOG_USEC``, ``WATCHDOG_PID`` names
        another process, or no ``NOTIFY_SOCKET``).
        """
        timeout = self.watchdog_timeout()
        return None if timeout is None else timeout / 2

    # -- notifications ----------------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (optionally with a ``STATUS=`` line in the same datagram).

        Also ends a reload started by :meth:`reloading`.
        """
        return self.notify("READY=1", *_status_field(status))

    def status(self, line: str) -> bool:
        """``STATUS=<line>``: the one-line summary ``systemctl status`` shows."""
        return self.notify(*_status_field(line))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: we are alive. Call it from the loop that processes readings."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self.notify("STOPPING=1", *_status_field(status))

    def reloading(self, status: str | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC=``; send :meth:`ready` when the reload is done.

        ``MONOTONIC_USEC`` (``CLOCK_MONOTONIC`` in microseconds) lets systemd 253+ match the
        reload to the ``systemctl reload`` that asked for it; older versions ignore it.
        """
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1_000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={now_usec}", *_status_field(status))

    def extend_timeout(self, seconds: float) -> bool:
        """``EXTEND_TIMEOUT_USEC=``: the current start or stop step needs ``seconds`` more.

        Useful while a long journal is replayed at start-up, before ``READY=1``.
        """
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=VALUE`` strings) as one notification.

        Returns:
            True when the datagram was sent; False when notifications are off or the send
            failed (logged once per failure streak, never raised).
        """
        if self._address is None or self._closed or not fields:
            return False
        message = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:
            try:
                sock = self._socket()
                sock.sendto(message, self._address)
            except OSError as exc:
                if not self._failing:
                    self._failing = True
                    _log.warning(
                        "cannot notify systemd at %s: %s (will keep trying, logged once)",
                        _display(self._address),
                        exc.strerror or exc,
                    )
                self._drop_socket()
                return False
            if self._failing:
                self._failing = False
                _log.info("notifying systemd works again")
            return True

    async def run_watchdog(self, healthy: Callable[[], bool] | None = None) -> None:
        """Ping the watchdog every :meth:`watchdog_interval` until cancelled.

        Run it as a task on the event loop that processes readings: if that loop stops
        turning, the pings stop and systemd restarts the service. When ``healthy`` is given
        and returns False, the ping is skipped (so a wedged pipeline also gets restarted).
        Returns at once when systemd does not watch us.
        """
        interval = self.watchdog_interval()
        if interval is None:
            return
        while True:
            if healthy is None or healthy():
                self.watchdog()
            await asyncio.sleep(interval)

    def close(self) -> None:
        """Close the socket; later notifications are no-ops."""
        with self._lock:
            self._closed = True
            self._drop_socket()

    def __enter__(self) -> SystemdNotifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "off" if self._address is None else _display(self._address)
        return f"<SystemdNotifier {where} watchdog={self.watchdog_interval()}>"

    # -- internals ----------------------------------------------------------------------------

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.settimeout(_SEND_TIMEOUT_S)
            self._sock = sock
        return self._sock

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _parse_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        # Abstract namespace: a leading NUL byte instead of the '@'.
        return b"\0" + value[1:].encode("utf-8")
    if value.startswith("/"):
        return value
    # vsock:CID:PORT (systemd 254+, for VMs) and anything else are not for us.
    _log.warning("NOTIFY_SOCKET=%r is not a unix socket path; systemd notifications off", value)
    return None


def _parse_watchdog(env: Mapping[str, str]) -> int | None:
    raw = env.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        _log.warning("WATCHDOG_USEC=%r is not a number; watchdog pings off", raw)
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None  # the watchdog is meant for another process (e.g. our parent)
        except ValueError:
            return None
    return usec


def _status_field(line: str | None) -> tuple[str, ...]:
    if line is None:
        return ()
    # A newline would start a new KEY=VALUE field: keep STATUS to exactly one line.
    return ("STATUS=" + " ".join(line.replace("\0", " ").split()),)


def _display(address: str | bytes) -> str:
    if isinstance(address, bytes):
        return "@" + address[1:].decode("utf-8", "replace")
    return address
