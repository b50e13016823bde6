"""sd_notify against real unix datagram sockets: a path in a temp dir and an abstract name."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.service.notify import SystemdNotifier


class Manager:
    """The service manager's end: a bound datagram socket we read notifications from."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def receive(self, timeout: float = 5.0) -> dict[str, str]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536).decode()
        return dict(line.split("=", 1) for line in data.split("\n"))

    def nothing_pending(self) -> bool:
        self.sock.settimeout(0)
        try:
            self.sock.recv(65536)
        except BlockingIOError:
            return True
        return False


@pytest.fixture
def path_manager(tmp_path: Path) -> Iterator[Manager]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield Manager(sock, str(path))
    sock.close()


@pytest.fixture
def abstract_manager() -> Iterator[Manager]:
    name = f"edge-gateway-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    yield Manager(sock, "@" + name)
    sock.close()


@pytest.fixture(params=["path", "abstract"])
def manager(request: pytest.FixtureRequest) -> Manager:
    name = "path_manager" if request.param == "path" else "abstract_manager"
    value = request.getfixturevalue(name)
    assert isinstance(value, Manager)
    return value


def test_each_notification_is_one_datagram(manager: Manager) -> None:
    with SystemdNotifier({"NOTIFY_SOCKET": manager.env_value}) as notifier:
        assert notifier.enabled
        assert notifier.ready(status="connected, 3 devices restored, subscribed")
        assert manager.receive() == {
            "READY": "1",
            "STATUS": "connected, 3 devices restored, subscribed",
        }
        assert notifier.status("10 devices, 24.6 readings/s")
        assert manager.receive() == {"STATUS": "10 devices, 24.6 readings/s"}
        assert notifier.watchdog()
        assert manager.receive() == {"WATCHDOG": "1"}
        assert notifier.stopping()
        assert manager.receive() == {"STOPPING": "1"}
        assert notifier.extend_timeout(2.5)
        assert manager.receive() == {"EXTEND_TIMEOUT_USEC": "2500000"}


def test_reloading_carries_the_monotonic_clock(path_manager: Manager) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path_manager.env_value})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    fields = path_manager.receive()
    assert fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after
    notifier.close()


def test_status_is_kept_to_one_line(path_manager: Manager) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path_manager.env_value})
    notifier.status("broker down\nREADY=1")  # a newline must not smuggle in a field
    assert path_manager.receive() == {"STATUS": "broker down READY=1"}
    notifier.close()


def test_without_notify_socket_everything_is_a_noop() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval() is None


def test_unsupported_address_turns_notifications_off(caplog: pytest.LogCaptureFixture) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert not notifier.ready()
    assert "not a unix socket path" in caplog.text


def test_unset_environment_removes_the_variables(path_manager: Manager) -> None:
    env = {"NOTIFY_SOCKET": path_manager.env_value, "WATCHDOG_USEC": "30000000", "OTHER": "x"}
    notifier = SystemdNotifier(env, unset_environment=True)
    assert env == {"OTHER": "x"}
    assert notifier.ready()
    assert notifier.watchdog_interval() == 15.0
    notifier.close()


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout(
    path_manager: Manager, env: dict[str, str], interval: float | None
) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path_manager.env_value, **env})
    assert notifier.watchdog_interval() == interval
    assert notifier.watchdog_timeout() == (None if interval is None else interval * 2)


def test_send_failure_is_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gone.sock"
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    with caplog.at_level(logging.INFO, logger="gateway.service.notify"):
        assert not notifier.ready()
        assert not notifier.watchdog()
        assert not notifier.watchdog()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert str(path) in warnings[0].getMessage()

        # The manager comes (back): sending works again, and that is logged once too.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        try:
            assert notifier.watchdog()
            assert Manager(sock, str(path)).receive() == {"WATCHDOG": "1"}
        finally:
            sock.close()
    assert "works again" in caplog.text
    notifier.close()
    assert not notifier.watchdog()


async def test_run_watchdog_pings_at_half_the_timeout(path_manager: Manager) -> None:
    # WATCHDOG_USEC=200ms -> a ping every 100ms.
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path_manager.env_value, "WATCHDOG_USEC": "200000"})
    task = asyncio.create_task(notifier.run_watchdog(), name="test.watchdog")
    try:
        stamps = []
        for _ in range(4):
            fields = await asyncio.to_thread(path_manager.receive)
            assert fields == {"WATCHDOG": "1"}
            stamps.append(time.monotonic())
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        notifier.close()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # Pings come at about half the 200ms timeout: well inside it, and not a busy loop.
    assert 0.07 < sum(gaps) / len(gaps) < 0.17, gaps


async def test_run_watchdog_skips_pings_while_unhealthy(path_manager: Manager) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path_manager.env_value, "WATCHDOG_USEC": "100000"})
    checks = 0
    healthy = asyncio.Event()

    def is_healthy() -> bool:
        nonlocal checks
        checks += 1
        if checks >= 3:
            healthy.set()
            return True
        return False

    task = asyncio.create_task(notifier.run_watchdog(is_healthy), name="test.watchdog")
    try:
        await asyncio.wait_for(healthy.wait(), 5)
        fields = await asyncio.to_thread(path_manager.receive)
        assert fields == {"WATCHDOG": "1"}
        assert checks >= 3  # the first two unhealthy rounds sent nothing
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        notifier.close()


async def test_run_watchdog_returns_when_not_watched() -> None:
    await asyncio.wait_for(SystemdNotifier({}).run_watchdog(), 1)
