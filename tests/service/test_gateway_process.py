"""The real gateway process under a fake service manager (a NOTIFY_SOCKET we bind).

``edge-gateway run -c FILE`` runs as a child process against a private Mosquitto, with
``NOTIFY_SOCKET`` pointing at a unix datagram socket in the test's temp dir and
``WATCHDOG_USEC=1s``. Checked: READY only once connected and subscribed (a reading published
right after READY is processed; no READY while the broker is down), WATCHDOG pings from the
processing loop at about half the timeout, STOPPING then exit 0 on SIGTERM with nothing lost
(the readings before the stop are in their window after a restart), and SIGHUP with a good
config (RELOADING, READY, window state kept) and with bad ones (rejected, old config kept).

Uses the lead's harness: tests/gateway_runner.py (GatewayProcess) and tests/mqtt_tools.py.
"""

from __future__ import annotations

import itertools
import signal
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gateway_runner import GatewayProcess
from tests.mqtt_tools import collector, publisher
from tests.services import Mosquitto, free_port

SIZE = 10_000
WATCHDOG_USEC = 1_000_000


@dataclass(frozen=True)
class Notification:
    at: float
    fields: dict[str, str]


class FakeManager:
    """Receives sd_notify datagrams on a bound socket, in a thread, with arrival times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.received: list[Notification] = []
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="test.notify", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            with self._cond:
                self.received.append(Notification(time.monotonic(), fields))
                self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[list[Notification]], bool], timeout: float, what: str
    ) -> list[Notification]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [n.fields for n in self.received][-10:]
                    raise TimeoutError(f"no {what} within {timeout}s; got {got}")
                self._cond.wait(remaining)
            return list(self.received)

    def index(self, key: str, start: int = 0) -> int | None:
        with self._cond:
            for i, n in enumerate(self.received[start:], start):
                if key in n.fields:
                    return i
        return None

    def count(self) -> int:
        with self._cond:
            return len(self.received)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self.sock.close()


def _has(key: str, start: int = 0) -> Callable[[list[Notification]], bool]:
    return lambda received: any(key in n.fields for n in received[start:])


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[FakeManager]:
    fake = FakeManager(tmp_path / "notify.sock")
    yield fake
    fake.close()


@dataclass
class Setup:
    config: Path
    prefix: str
    topic: str
    metrics_port: int


def _config_text(
    port: int, state: Path, gateway_id: str, topic: str, metrics_port: int, extra: str = ""
) -> str:
    return f"""\
gateway_id = "{gateway_id}"

[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_max = "1s"

[state]
backend = "sqlite"
path = "{state}"
checkpoint_interval = "1s"

[status]
interval = "1s"

[metrics]
enabled = true
host = "127.0.0.1"
port = {metrics_port}

[[sensors]]
name = "temperature"
topic = "{topic}"
device = "{{1}}"
format = "json"
value = "temp"
timestamp = "ts"

[sensors.window]
type = "tumbling"
size = "10s"

[sensors.watermark]
strategy = "monotonic"
idle_timeout = "1h"
{extra}"""


@pytest.fixture
def setup(tmp_path: Path, mosquitto: Mosquitto) -> Setup:
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
    topic_root = f"site-{gateway_id}"
    metrics_port = free_port()
    path = tmp_path / "gateway.toml"
    path.write_text(
        _config_text(
            mosquitto.port,
            tmp_path / "state.db",
            gateway_id,
            f"{topic_root}/+/temperature",
            metrics_port,
        )
    )
    return Setup(path, f"edge-gateway/{gateway_id}", topic_root, metrics_port)


def _process(setup: Setup, manager: FakeManager, tmp_path: Path, name: str) -> GatewayProcess:
    env = {"NOTIFY_SOCKET": str(manager.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    process = GatewayProcess(setup.config, tmp_path / f"{name}.log", env=env)
    process.env.pop("JOURNAL_STREAM", None)
    process.env.pop("WATCHDOG_PID", None)
    return process


def _base() -> int:
    """A window-aligned event time an hour ago (inside max_age, never in the future)."""
    now = time.time_ns() // 1_000_000
    return (now - 3_600_000) // SIZE * SIZE


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the scrape")


def test_ready_watchdog_stop_and_restart_lose_nothing(
    mosquitto: Mosquitto, setup: Setup, manager: FakeManager, tmp_path: Path
) -> None:
    base = _base()
    gateway = _process(setup, manager, tmp_path, "first")
    with collector(mosquitto.host, mosquitto.port, f"{setup.prefix}/windows/#") as out:
        gateway.start()
        try:
            manager.wait_for(_has("READY"), 30, "READY=1")
            ready = manager.index("READY")
            assert ready is not None
            assert manager.received[ready].fields.get("STATUS")
            # Nothing from the processing loop before READY.
            first_ping = manager.index("WATCHDOG")
            assert first_ping is None or first_ping > ready

            # Subscribed at READY: readings published now (a fresh session) reach the gateway.
            with publisher(mosquitto.host, mosquitto.port) as pub:
                for offset, value in ((1_000, 1.0), (2_000, 2.0), (3_000, 3.0)):
                    pub.send(f"{setup.topic}/d1/temperature", {"temp": value, "ts": base + offset})

            # Watchdog: at least 4 pings after READY, about half the 1 s timeout apart.
            received = manager.wait_for(
                lambda r: sum("WATCHDOG" in n.fields for n in r[ready:]) >= 5, 15, "5 pings"
            )
            pings = [n.at for n in received[ready:] if "WATCHDOG" in n.fields]
            gaps = [b - a for a, b in itertools.pairwise(pings)]
            assert max(gaps) < WATCHDOG_USEC / 1e6, gaps
            assert 0.3 <= sum(gaps) / len(gaps) <= 0.9, gaps

            # The metrics endpoint counts what came in.
            deadline = time.monotonic() + 15
            while _metric(_scrape(setup.metrics_port), "edge_gateway_readings_in_total") < 3:
                assert time.monotonic() < deadline, "readings never counted in the metrics"
                time.sleep(0.05)

            # SIGTERM: STOPPING, then exit 0.
            before_stop = manager.count()
            assert gateway.process is not None
            gateway.process.send_signal(signal.SIGTERM)
            assert gateway.process.wait(30) == 0, gateway.log()
            stopping = manager.index("STOPPING", before_stop)
            assert stopping is not None, [n.fields for n in manager.received[before_stop:]]
        finally:
            gateway.ensure_stopped()

        # Restart: the three readings were kept; one more closes their window.
        second = _process(setup, manager, tmp_path, "second")
        start = manager.count()
        second.start()
        try:
            manager.wait_for(_has("READY", start), 30, "READY=1 after the restart")
            with publisher(mosquitto.host, mosquitto.port) as pub:
                pub.send(f"{setup.topic}/d1/temperature", {"temp": 9.0, "ts": base + SIZE + 1})
            out.wait_for(
                lambda c: any(m["window_start"] == base for m in c.json()), 20, "the window"
            )
            assert second.terminate(30) == 0, second.log()
        finally:
            second.ensure_stopped()
    window = [m for m in out.json() if m["window_start"] == base][-1]
    assert (window["count"], window["sum"], window["revision"]) == (3, 6.0, 0)


def test_sighup_reloads_a_good_config_and_rejects_bad_ones(
    mosquitto: Mosquitto, setup: Setup, manager: FakeManager, tmp_path: Path
) -> None:
    base = _base()
    good = setup.config.read_text()
    gateway = _process(setup, manager, tmp_path, "gateway")
    with collector(mosquitto.host, mosquitto.port, f"{setup.prefix}/windows/#") as out:
        gateway.start()
        try:
            manager.wait_for(_has("READY"), 30, "READY=1")
            assert gateway.process is not None
            with publisher(mosquitto.host, mosquitto.port) as pub:
                pub.send(f"{setup.topic}/d1/temperature", {"temp": 1.0, "ts": base + 1_000})
                # Wait until the reading is in (so the reload has window state to keep).
                deadline = time.monotonic() + 15
                while _metric(_scrape(setup.metrics_port), "edge_gateway_readings_in_total") < 1:
                    assert time.monotonic() < deadline, "the reading never arrived"
                    time.sleep(0.05)

                # A good config with a detector added: RELOADING, then READY; state kept.
                setup.config.write_text(
                    good + '\n[[sensors.detectors]]\ntype = "threshold"\nmax = 100.0\n'
                )
                start = manager.count()
                offset = len(gateway.log())
                gateway.process.send_signal(signal.SIGHUP)
                received = manager.wait_for(_has("READY", start), 15, "READY=1 after reload")
                reloading = manager.index("RELOADING", start)
                ready = manager.index("READY", start)
                assert reloading is not None
                assert ready is not None
                assert reloading <= ready
                assert int(received[reloading].fields["MONOTONIC_USEC"]) > 0
                gateway.wait_log("configuration reloaded", after=offset)

                pub.send(f"{setup.topic}/d1/temperature", {"temp": 3.0, "ts": base + 2_000})
                pub.send(f"{setup.topic}/d1/temperature", {"temp": 0.0, "ts": base + SIZE})
                out.wait_for(lambda c: any(m["window_start"] == base for m in c.json()), 20)
                window = [m for m in out.json() if m["window_start"] == base][-1]
                assert (window["count"], window["sum"]) == (2, 4.0)  # the pre-reload reading kept

                # Bad configs: rejected, with a log line; the gateway keeps running.
                for bad in ("this is [[[ not toml", good.replace('size = "10s"', 'size = "-"')):
                    setup.config.write_text(bad)
                    start = manager.count()
                    offset = len(gateway.log())
                    gateway.process.send_signal(signal.SIGHUP)
                    received = manager.wait_for(_has("READY", start), 15, "READY after reject")
                    ready = manager.index("READY", start)
                    assert ready is not None
                    assert received[ready].fields.get("STATUS", "").startswith("reload rejected")
                    gateway.wait_log("reload rejected", after=offset)
                    assert gateway.process.poll() is None

                # Still working with the old (good) config.
                pub.send(f"{setup.topic}/d1/temperature", {"temp": 5.0, "ts": base + 2 * SIZE})
                out.wait_for(lambda c: any(m["window_start"] == base + SIZE for m in c.json()), 20)
            assert gateway.terminate(30) == 0, gateway.log()
        finally:
            gateway.ensure_stopped()


def test_no_ready_while_the_broker_is_down(
    mosquitto: Mosquitto, setup: Setup, manager: FakeManager, tmp_path: Path
) -> None:
    mosquitto.kill()
    gateway = _process(setup, manager, tmp_path, "gateway")
    gateway.start()
    try:
        # An absence can only be checked over a span: 3 s of broker outage, no READY.
        with pytest.raises(TimeoutError):
            manager.wait_for(_has("READY"), 3, "READY=1")
        assert gateway.process is not None
        assert gateway.process.poll() is None, gateway.log()
        mosquitto.start()
        manager.wait_for(_has("READY"), 30, "READY=1 once the broker is up")
        assert gateway.terminate(30) == 0, gateway.log()
    finally:
        gateway.ensure_stopped()
