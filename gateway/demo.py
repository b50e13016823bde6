"""``edge-gateway demo``: a private broker, the simulator, the gateway and the dashboard.

Everything it starts lives in one temporary directory and is stopped on exit (Ctrl-C, ``q``
in the dashboard, or ``--duration``). Without a terminal it prints the live window results
and alerts instead of opening the dashboard.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

DEMO_CONFIG = """\
# Written by `edge-gateway demo`; see configs/gateway.example.toml for every key.
gateway_id = "demo"

[mqtt]
host = "{host}"
port = {port}

[state]
backend = "sqlite"
path = "{state}"
checkpoint_interval = "5s"

[logging]
level = "info"

[[sensors]]
name = "temperature"
topic = "site/+/temperature"
device = "{{1}}"
format = "json"
value = "temp"
timestamp = "ts"
unit = "°C"

[sensors.window]
type = "tumbling"
size = "5s"

[sensors.watermark]
strategy = "bounded"
max_delay = "2s"
idle_timeout = "10s"

[sensors.late]
strategy = "allowed_lateness"
max_lateness = "10s"

[[sensors.detectors]]
type = "threshold"
max = 30.0
clear_max = 28.0
min = 12.0
clear_min = 14.0
severity = "critical"

[[sensors.detectors]]
type = "auto"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="use this broker instead of starting a private one")
    parser.add_argument("--port", type=int, default=1883, help="port of --host")
    parser.add_argument("--devices", type=int, default=12, help="simulated devices")
    parser.add_argument("--rate", type=float, default=2.0, help="readings/s per device")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (0 = until Ctrl-C)")
    parser.add_argument("--no-dashboard", action="store_true",
                        help="print live results instead of opening the dashboard")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # SIGTERM stops the demo like Ctrl-C does: everything it started is stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="edge-gateway-demo-"))
    children: list[subprocess.Popen[bytes]] = []
    try:
        if args.host:
            host, port = args.host, args.port
        else:
            host, port = "127.0.0.1", _free_port()
            children.append(_start_broker(workdir, port))
        config_path = workdir / "demo.toml"
        config_path.write_text(
            DEMO_CONFIG.format(host=host, port=port, state=workdir / "state.db"), "utf-8"
        )
        print(f"demo: broker {host}:{port}, files in {workdir}", file=sys.stderr)
        python = sys.executable
        gateway_log = (workdir / "gateway.log").open("wb")
        children.append(
            subprocess.Popen(
                [python, "-m", "gateway", "run", "-c", str(config_path)],
                stdout=gateway_log, stderr=subprocess.STDOUT,
            )
        )
        children.append(
            subprocess.Popen(
                [
                    python, "-m", "gateway", "simulate", "--host", host, "--port", str(port),
                    "--devices", str(args.devices), "--rate", str(args.rate),
                    "--anomaly", "spike", "--anomaly-rate", "0.02", "--anomaly-devices", "2",
                    "--seed", "7",
                ],
                stdout=subprocess.DEVNULL, stderr=(workdir / "simulator.log").open("wb"),
            )
        )
        interactive = sys.stdout.isatty() and sys.stdin.isatty() and not args.no_dashboard
        if interactive:
            return _dashboard(host, port, args.duration)
        return _print_live(host, port, args.duration, children)
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            _stop(child)
        shutil.rmtree(workdir, ignore_errors=True)


def _dashboard(host: str, port: int, duration: float) -> int:
    from gateway.dashboard import run_dashboard

    if duration:
        timer = threading.Timer(duration, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.daemon = True
        timer.start()
    return run_dashboard(host=host, port=port, prefix="edge-gateway/demo", gateway_id="demo")


def _print_live(
    host: str, port: int, duration: float, children: list[subprocess.Popen[bytes]]
) -> int:
    """Without a terminal: a readable live log of window results and alerts."""
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)

    def on_connect(c: paho.Client, *_: object) -> None:
        c.subscribe([("edge-gateway/demo/windows/#", 0), ("edge-gateway/demo/alerts", 1)])

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        data = orjson.loads(msg.payload)
        if msg.topic.endswith("/alerts"):
            print(
                f"ALERT {data['state']:8} {data['device']}/{data['sensor']} "
                f"{data['detector']} {data['severity']} value={data['value']:.2f}",
                flush=True,
            )
        else:
            start = time.strftime("%H:%M:%S", time.gmtime(data["window_start"] / 1000))
            print(
                f"window {start}Z {data['device']}/{data['sensor']}: count={data['count']} "
                f"mean={data['mean']:.2f} min={data['min']:.2f} max={data['max']:.2f} "
                f"rev={data['revision']}",
                flush=True,
            )

    client.on_connect = on_connect
    client.on_message = on_message
    for attempt in _retry(10.0):
        try:
            client.connect(host, port)
            break
        except OSError:
            attempt()
    client.loop_start()
    deadline = time.monotonic() + duration if duration else None
    try:
        while deadline is None or time.monotonic() < deadline:
            if any(child.poll() is not None for child in children):
                print("demo: a component exited; see the logs above", file=sys.stderr)
                return 1
            time.sleep(0.2)
    finally:
        client.loop_stop()
        client.disconnect()
    return 0


def _retry(seconds: float) -> Iterator[Callable[[], None]]:
    deadline = time.monotonic() + seconds

    def wait() -> None:
        if time.monotonic() > deadline:
            raise SystemExit("demo: the broker did not start")
        time.sleep(0.1)

    while True:
        yield wait


def _start_broker(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if binary is None:
        raise SystemExit("demo: mosquitto is not installed; `make demo` installs it")
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir}/\nmax_queued_messages 100000\n"
        "max_inflight_messages 1000\npersistent_client_expiration 1d\n",
        "utf-8",
    )
    process = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
        stderr=(workdir / "mosquitto.log").open("wb"),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    raise SystemExit("demo: mosquitto did not start; see its log")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()
