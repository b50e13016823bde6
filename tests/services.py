"""Real servers for tests: Mosquitto, redis-server and a 3-node Redis Cluster.

Each runs as a subprocess of the test session on a free loopback port with its files in a
temporary directory, and can be stopped, killed and restarted for fault tests. Services a
machine may already run on their standard ports are never used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

STARTUP_DEADLINE_S = 15.0


class ServiceError(RuntimeError):
    """A test service could not be started."""


def find_binary(name: str) -> str:
    """Locate a server binary; Debian puts mosquitto in /usr/sbin, often outside PATH."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        raise ServiceError(f"{name} is not installed: run `make test`, which installs it")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, as Redis Cluster needs."""
    for _ in range(1000):
        port = free_port()
        if port > 55_535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bus:
            try:
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port
    raise ServiceError("no free port pair for a Redis Cluster node")


def wait_for(predicate: object, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it is true; raise naming ``what`` after ``timeout`` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class _Server:
    """A server process on ``self.port`` that can be stopped, killed and restarted."""

    name = "server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return _port_open(self.port)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.out"

    def start(self) -> None:
        if self.running:
            return
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        log.close()
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not self.ready():
            if self.process.poll() is not None:
                raise ServiceError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceError(f"{self.name} did not listen on {self.port} in time")
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Graceful stop (SIGTERM), as a service manager would."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Abrupt stop (SIGKILL): no chance to save anything."""
        self._signal(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        # The port is ours again only once nothing listens on it.
        wait_for(lambda: not _port_open(self.port), 10, f"{self.name} to release {self.port}")


class Mosquitto(_Server):
    """A private Mosquitto set up as the gateway's guarantees require (see docs/operations.md)."""

    name = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        super().__init__(workdir, port)
        self.extra_conf = extra_conf

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def command(self) -> list[str]:
        self.conf_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 0\n"
            "persistent_client_expiration 1d\n"
            f"log_dest file {self.workdir}/mosquitto.log\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            # As root, mosquitto would switch to its own user, which cannot write our temp dir.
            + ("user root\n" if os.geteuid() == 0 else "")
            + self.extra_conf
        )
        return [find_binary("mosquitto"), "-c", str(self.conf_path)]


class RedisServer(_Server):
    """A private redis-server with an append-only file, so a restart keeps its data."""

    name = "redis"

    def __init__(self, workdir: Path, port: int | None = None, *extra: str) -> None:
        super().__init__(workdir, port)
        self.extra = list(extra)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            find_binary("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--protected-mode", "no",
            *self.extra,
        ]

    def ready(self) -> bool:
        return self.cli("PING", check=False).strip() == "PONG"

    def cli(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [find_binary("redis-cli"), "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if check and result.returncode != 0:
            raise ServiceError(f"redis-cli {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout


class RedisCluster:
    """Three master nodes, no replicas: the smallest real Redis Cluster."""

    def __init__(self, workdir: Path) -> None:
        self.nodes = [
            RedisServer(
                workdir / f"node{i}",
                free_cluster_port(),
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
            )
            for i in range(3)
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        if "cluster_state:ok" in self.nodes[0].cli("CLUSTER", "INFO"):
            return  # restarted nodes remember their cluster from nodes.conf
        subprocess.run(
            [
                find_binary("redis-cli"), "--cluster", "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            capture_output=True, check=True, timeout=30,
        )
        wait_for(
            lambda: all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in self.nodes),
            STARTUP_DEADLINE_S,
            "the Redis Cluster to report cluster_state:ok",
            interval=0.1,
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()


def terminate_quietly(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """End a child process of a test, whatever state it is in."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
