"""Publishing timed messages with paho-mqtt, shared by ``simulate`` and ``replay``.

Errors a user can act on (broker unreachable, credentials refused, unreadable password file)
become :class:`PublishError` with one line naming the broker and what happened.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

_CONNECT_TIMEOUT_S = 10.0
_MAX_UNACKED = 1000
_DRAIN_TIMEOUT_S = 10.0
_PROGRESS_EVERY_S = 10.0


class PublishError(Exception):
    """The broker cannot be used; the message says which broker and why."""


class Publisher:
    """A connected paho client that publishes messages at their due times."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_name: str,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._where = f"{host}:{port}"
        self._host = host
        self._port = port
        self._connected = threading.Event()
        self._refused: str | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"edge-gateway-{client_name}-{os.getpid()}"
        )
        self._client.max_queued_messages_set(0)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._unacked: deque[mqtt.MQTTMessageInfo] = deque()

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, client_name: str) -> Publisher:
        """From ``--host --port --username --password-file``."""
        password = None
        password_file: Path | None = args.password_file
        if password_file is not None:
            try:
                password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                msg = f"cannot read --password-file {password_file}: {exc.strerror}"
                raise PublishError(msg) from exc
        return cls(
            args.host, args.port, client_name=client_name, username=args.username,
            password=password,
        )

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._connected.clear()

    def __enter__(self) -> Publisher:
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except (OSError, ValueError) as exc:
            msg = f"cannot connect to the MQTT broker at {self._where}: {exc}"
            raise PublishError(msg) from exc
        self._client.loop_start()
        if not self._connected.wait(_CONNECT_TIMEOUT_S):
            self._close()
            msg = f"the MQTT broker at {self._where} did not answer in {_CONNECT_TIMEOUT_S:g} s"
            raise PublishError(msg)
        if self._refused is not None:
            self._close()
            msg = f"the MQTT broker at {self._where} refused the connection: {self._refused}"
            raise PublishError(msg)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while self._unacked and time.monotonic() < deadline:
            self._unacked[0].wait_for_publish(max(0.0, deadline - time.monotonic()))
            if self._unacked[0].is_published():
                self._unacked.popleft()
        self._close()

    def _close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish_due(
        self,
        messages: Iterable[tuple[int, str, bytes]],
        *,
        start_ms: int,
        speed: float,
        stop: threading.Event,
        qos: int,
        progress: str | None = None,
    ) -> int:
        """Publish ``(due_ms, topic, payload)`` messages in order; return how many were sent.

        A message due at ``due_ms`` is sent ``(due_ms - start_ms) / speed`` seconds after the
        call (``speed`` 0: at once). Stops early when ``stop`` is set. At most
        ``_MAX_UNACKED`` QoS>0 messages are in flight; past that it waits for acknowledgements.
        """
        began = time.monotonic()
        next_report = began + _PROGRESS_EVERY_S
        sent = 0
        for due_ms, topic, payload in messages:
            if stop.is_set():
                break
            if speed > 0:
                wait = (due_ms - start_ms) / 1000.0 / speed - (time.monotonic() - began)
                if wait > 0 and stop.wait(wait):
                    break
            info = self._client.publish(topic, payload, qos=qos)
            sent += 1
            if qos > 0:
                self._unacked.append(info)
                while self._unacked and self._unacked[0].is_published():
                    self._unacked.popleft()
                while len(self._unacked) >= _MAX_UNACKED and not stop.is_set():
                    self._unacked[0].wait_for_publish(1.0)
                    if self._unacked[0].is_published():
                        self._unacked.popleft()
            if progress is not None and time.monotonic() >= next_report:
                next_report += _PROGRESS_EVERY_S
                state = "" if self._connected.is_set() else " (broker disconnected, retrying)"
                say(f"{progress}: {sent} messages published{state}")
        return sent


def add_mqtt_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--host --port --username --password-file --qos --quiet`` to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="MQTT broker host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1883, help="MQTT broker port (default 1883)")
    parser.add_argument("--username", default=None, help="MQTT user name")
    parser.add_argument(
        "--password-file", type=Path, default=None, help="file holding the MQTT password"
    )
    parser.add_argument("--qos", type=int, choices=(0, 1, 2), default=1, help="QoS (default 1)")
    parser.add_argument("--quiet", action="store_true", help="print only the final summary")


class stop_on_signals:
    """SIGINT/SIGTERM set an event instead of raising, so publishing stops between messages.

    Given an ``event`` (a caller running the tool in a thread, e.g. ``edge-gateway demo``),
    that event is used and no signal handler is installed: the caller stops it by setting it.
    """

    def __init__(self, event: threading.Event | None = None) -> None:
        self._own = event is None
        self.event = threading.Event() if event is None else event
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __enter__(self) -> threading.Event:
        if self._own and threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self.event

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]


def say(text: str, *, error: bool = False) -> None:
    """One line for the user: on stdout, or on stderr when ``error``."""
    stream = sys.stderr if error else sys.stdout
    stream.write(text + "\n")
    stream.flush()
