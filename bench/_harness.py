"""What the end-to-end benchmarks share: a private broker, the publisher and bare-subscriber
processes, and a gateway child process watched through its status topic and ``/proc``.

Everything listens on 127.0.0.1 on free ports and is stopped on exit (``with`` blocks).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import tomli_w
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import Mosquitto, RedisServer, find_binary, terminate_quietly  # noqa: E402

BENCH = Path(__file__).resolve().parent
PREFIX = "edge-gateway/bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- machine -----------------------------------------------------------------------------

def load() -> str:
    """The load average, to print beside figures (the machine is shared)."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/statm."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


# -- broker ------------------------------------------------------------------------------

class BenchBroker(Mosquitto):
    """Mosquitto set up as docs/operations.md says, with a bounded in-flight window and (unless
    ``nodelay`` is off) ``set_tcp_nodelay true``: with Mosquitto's default (Nagle on) a
    subscriber receiving a few thousand small messages a second sees ~40 ms delays."""

    nodelay = True

    def command(self) -> list[str]:
        self.conf_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 3600\n"
            "max_queued_messages 10000000\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 1000\n"
            + ("set_tcp_nodelay true\n" if self.nodelay else "")
            + "persistent_client_expiration 1d\n"
            f"log_dest file {self.workdir}/mosquitto.log\n"
            "log_type error\nlog_type warning\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        return [find_binary("mosquitto"), "-c", str(self.conf_path)]


@contextlib.contextmanager
def broker(nodelay: bool = True) -> Iterator[BenchBroker]:
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        b = BenchBroker(Path(tmp))
        b.nodelay = nodelay
        b.start()
        try:
            yield b
        finally:
            b.stop()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        r = RedisServer(Path(tmp))
        r.start()
        try:
            yield r
        finally:
            r.stop()


# -- helper processes ---------------------------------------------------------------------

class Child:
    """A helper process speaking the ``ready`` / ``go`` / ``done`` line protocol."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=ROOT,
        )

    def expect(self, word: str, timeout: float = 300) -> list[str]:
        assert self.process.stdout is not None
        result: list[list[str]] = []

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                parts = line.split()
                if parts and parts[0] == word:
                    result.append(parts[1:])
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not result:
            raise TimeoutError(f"{self.process.args} never said {word!r}")
        return result[0]

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def close(self) -> None:
        terminate_quietly(self.process)  # type: ignore[arg-type]


def publisher(port: int, *, devices: int, count: int, qos: int = 0, rate: float = 0,
              hot_every: int = 0, client_id: str = "bench-publisher") -> Child:
    child = Child([
        str(BENCH / "_publisher.py"), "--port", str(port), "--devices", str(devices),
        "--count", str(count), "--qos", str(qos), "--rate", str(rate),
        "--hot-every", str(hot_every), "--client-id", client_id,
    ])
    child.expect("ready")
    return child


def bare_subscriber(port: int, *, count: int, qos: int, decode: bool) -> Child:
    argv = [str(BENCH / "_bare_sub.py"), "--port", str(port), "--count", str(count),
            "--qos", str(qos)]
    child = Child([*argv, "--decode"] if decode else argv)
    child.expect("ready", timeout=30)
    return child


# -- the gateway ---------------------------------------------------------------------------

def gateway_config(port: int, state_dir: Path, *, backend: str = "sqlite", qos: int = 1,
                   detectors: list[dict[str, Any]] | None = None,
                   redis_url: str | None = None, max_devices: int = 20_000) -> dict[str, Any]:
    """The benchmark gateway: one JSON sensor with 10 s tumbling windows and ``auto``."""
    cfg: dict[str, Any] = {
        "gateway_id": "bench",
        "mqtt": {"host": "127.0.0.1", "port": port, "qos": qos, "prefix": PREFIX},
        "state": {"backend": backend, "path": str(state_dir / "state.db"),
                  "checkpoint_interval": "5s"},
        "status": {"interval": "250ms"},
        # The publisher sends readings far faster per device than a real sensor does.
        "limits": {"max_rate_per_device": 1_000_000.0, "max_devices": max_devices},
        "logging": {"level": "info"},
        "sensors": [{
            "name": "temperature",
            "topic": "bench/+/temperature",
            "device": "{1}",
            "format": "json",
            "value": "temp",
            "timestamp": "ts",
            "window": {"type": "tumbling", "size": "10s"},
            "watermark": {"strategy": "bounded", "max_delay": "5s", "idle_timeout": "1h"},
            "detectors": detectors if detectors is not None else [{"type": "auto"}],
        }],
    }
    if redis_url is not None:
        cfg["redis"] = {"url": redis_url}
    return cfg


@dataclass
class Status:
    received: float  # time.time() when it arrived
    data: dict[str, Any]


@dataclass
class Monitor:
    """A paho client in the benchmark process watching status and alerts."""

    port: int
    watch: str | None = None  # also time this topic's messages (the transport's latency)
    statuses: list[Status] = field(default_factory=list)
    watched: list[tuple[float, bytes]] = field(default_factory=list)
    alerts: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    _client: paho.Client | None = None

    def __enter__(self) -> Monitor:
        client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=f"bench-monitor-{os.getpid()}-{time.monotonic_ns()}")
        subscribed = threading.Event()

        def on_message(c: paho.Client, u: Any, msg: paho.MQTTMessage) -> None:
            now = time.time()
            if msg.topic == f"{PREFIX}/alerts":
                self.alerts.append((now, orjson.loads(msg.payload)))
            elif msg.topic == f"{PREFIX}/status":
                self.statuses.append(Status(now, orjson.loads(msg.payload)))
            else:
                self.watched.append((now, msg.payload))

        client.on_message = on_message
        client.on_subscribe = lambda *_: subscribed.set()
        topics = [(f"{PREFIX}/status", 0), (f"{PREFIX}/alerts", 1)]
        if self.watch is not None:
            topics.append((self.watch, 0))
        client.on_connect = lambda c, *_: c.subscribe(topics)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        subscribed.wait(10)
        self._client = client
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def latest(self) -> dict[str, Any]:
        return self.statuses[-1].data if self.statuses else {}

    def readings_in(self) -> int:
        s = self.latest()
        return int(s.get("readings", {}).get("in", 0)) if s.get("state") == "online" else 0

    def wait_readings(self, total: int, timeout: float, stall_s: float = 20.0) -> int:
        """Wait until the gateway reports ``total`` readings in (or progress stops)."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = self.readings_in()
            if n >= total:
                return n
            if n != last:
                last, last_change = n, time.monotonic()
            elif time.monotonic() - last_change > stall_s:
                return n
            time.sleep(0.05)
        return self.readings_in()

    def rate_between(self, start: int, end: int) -> float:
        """Readings/s by the gateway's own clock, from the last status at or below ``start``
        readings to the first at or above ``end``."""
        online = [s.data for s in self.statuses if s.data.get("state") == "online"]
        before = [s for s in online if s["readings"]["in"] <= start]
        after = [s for s in online if s["readings"]["in"] >= end]
        if not before or not after:
            return float("nan")
        a, b = before[-1], after[0]
        return (b["readings"]["in"] - a["readings"]["in"]) * 1000 / max(1, b["ts"] - a["ts"])


class Gateway:
    """``edge-gateway run -c FILE`` as a child process; READY through NOTIFY_SOCKET."""

    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.config_path = workdir / "gateway.toml"
        self.config_path.write_text(tomli_w.dumps(config))
        self.log_path = workdir / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.ready_after = float("nan")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 120) -> float:
        """Start and wait for READY=1; return seconds from spawn to READY."""
        notify_path = str(self.workdir / "notify.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(notify_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        sock.settimeout(0.2)
        env = {**os.environ, "NOTIFY_SOCKET": notify_path}
        env.pop("WATCHDOG_USEC", None)
        log = self.log_path.open("ab")
        try:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "-c", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    if self.process.poll() is not None:
                        raise RuntimeError(
                            f"gateway exited: {self.log_path.read_text()[-2000:]}") from None
                    continue
                if b"READY=1" in data.split(b"\n"):
                    self.ready_after = time.perf_counter() - self.started
                    return self.ready_after
            raise TimeoutError("gateway never sent READY=1")
        finally:
            log.close()
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(notify_path)

    def stop(self) -> None:
        if self.process is not None:
            terminate_quietly(self.process)
            self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stats(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {"min": s[0], "median": s[len(s) // 2] if len(s) % 2 else
            (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2, "max": s[-1]}
