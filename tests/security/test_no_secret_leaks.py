"""End to end: the real gateway against the TLS broker and TLS Redis with secrets configured.

The gateway runs as ``edge-gateway run -c FILE`` (a subprocess, debug logging) and is driven
through a whole life: readings, an alert, a window, an acknowledgement command, a stop. Then
every log line, every message published on any topic and everything written to Redis is
searched for every configured secret (in every form :func:`redact` masks): none may appear.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.config import TlsConfig
from gateway.security import client_ssl_context
from gateway.security.redact import secret_forms
from tests.security.clients import connected
from tests.security.conftest import (
    COMMAND_TOPIC,
    GATEWAY_ID,
    PREFIX,
    Credentials,
    TlsMosquitto,
    TlsRedisServer,
)
from tests.security.pki import Pki
from tests.services import terminate_quietly, wait_for

RUN_DEADLINE_S = 30.0
pytestmark = pytest.mark.slow


def _edge_gateway() -> str:
    return str(Path(sys.executable).parent / "edge-gateway")


def _write_config(
    path: Path, pki: Pki, mqtt: TlsMosquitto, redis: TlsRedisServer, credentials: Credentials
) -> None:
    password_file = path.parent / "mqtt.password"
    password_file.write_text(credentials.mqtt_gateway + "\n")
    password_file.chmod(0o600)
    path.write_text(
        f"""\
gateway_id = "{GATEWAY_ID}"

[mqtt]
host = "127.0.0.1"
port = {mqtt.port}
username = "gateway"
password_file = "{password_file}"
[mqtt.tls]
ca_file = "{pki.ca.cert}"

[state]
backend = "sqlite"
path = "{path.parent / "state.db"}"
checkpoint_interval = "1s"

[redis]
url = "rediss://127.0.0.1:{redis.port}/0"
username = "gateway"
# password: from EDGE_GATEWAY_REDIS__PASSWORD
[redis.tls]
ca_file = "{pki.ca.cert}"

[sync]
heartbeat_interval = "1s"
retry_max = "2s"

[status]
interval = "500ms"

[logging]
level = "debug"

[[sensors]]
name = "temperature"
topic = "site/+/temperature"
device = "{{1}}"
format = "json"
value = "temp"

[sensors.window]
type = "tumbling"
size = "1s"

[sensors.watermark]
strategy = "bounded"
max_delay = "0s"
idle_timeout = "1s"

[[sensors.detectors]]
type = "threshold"
max = 80.0
severity = "critical"
"""
    )
    path.chmod(0o600)


@pytest.fixture
def gateway_process(
    tmp_path: Path,
    pki: Pki,
    tls_mosquitto: TlsMosquitto,
    tls_redis: TlsRedisServer,
    credentials: Credentials,
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    config = tmp_path / "gateway" / "gateway.toml"
    config.parent.mkdir()
    _write_config(config, pki, tls_mosquitto, tls_redis, credentials)
    log_path = tmp_path / "gateway.log"
    env = {**os.environ, "EDGE_GATEWAY_REDIS__PASSWORD": credentials.redis_gateway}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [_edge_gateway(), "run", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield process, log_path
    finally:
        terminate_quietly(process)


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return sorted({f for s in secrets for f in secret_forms(s) if f in text})


def test_a_full_run_leaks_no_configured_secret(
    gateway_process: tuple[subprocess.Popen[bytes], Path],
    pki: Pki,
    tls_mosquitto: TlsMosquitto,
    tls_redis: TlsRedisServer,
    credentials: Credentials,
) -> None:
    process, log_path = gateway_process
    context = client_ssl_context(TlsConfig(ca_file=pki.ca.cert))
    port = tls_mosquitto.port
    with (
        connected("127.0.0.1", port, "monitor", credentials.mqtt_monitor, context) as monitor,
        connected("127.0.0.1", port, "sensor", credentials.mqtt_sensor, context) as sensor,
        connected("127.0.0.1", port, "dashboard", credentials.mqtt_dashboard, context) as dash,
    ):
        monitor.subscribe("#")

        def online(messages: list[tuple[str, bytes]]) -> bool:
            return any(
                t == f"{PREFIX}/status" and json.loads(p).get("state") == "online"
                for t, p in messages
            )

        monitor.received.wait_until(online, "the gateway's online status", RUN_DEADLINE_S)
        for value in (20.0, 21.0, 95.0):
            payload = json.dumps({"temp": value}).encode()
            assert not sensor.publish("site/d1/temperature", payload).is_failure

        def alert_raised(messages: list[tuple[str, bytes]]) -> bool:
            return any(t == f"{PREFIX}/alerts" for t, _ in messages)

        messages = monitor.received.wait_until(alert_raised, "an alert", RUN_DEADLINE_S)
        alert = next(json.loads(p) for t, p in messages if t == f"{PREFIX}/alerts")
        ack = json.dumps({"command": "ack", "alert_id": alert["alert_id"], "by": "dashboard@test"})
        assert not dash.publish(COMMAND_TOPIC, ack.encode()).is_failure

        def acknowledged(messages: list[tuple[str, bytes]]) -> bool:
            return any(
                t == f"{PREFIX}/alerts" and json.loads(p).get("acknowledged") for t, p in messages
            )

        monitor.received.wait_until(acknowledged, "the acknowledged alert", RUN_DEADLINE_S)
        # Redis got the alert over TLS with the ACL user.
        stream = f"edge:{{{GATEWAY_ID}}}:alerts"
        wait_for(
            lambda: tls_redis.cli("XLEN", stream).strip() not in {"", "0"},
            RUN_DEADLINE_S,
            "the alert in Redis",
            interval=0.1,
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=RUN_DEADLINE_S) == 0

        def offline(messages: list[tuple[str, bytes]]) -> bool:
            return any(
                t == f"{PREFIX}/status" and json.loads(p).get("state") == "offline"
                for t, p in messages
            )

        messages = monitor.received.wait_until(offline, "the offline status", RUN_DEADLINE_S)

    secrets = [credentials.mqtt_gateway, credentials.redis_gateway]
    published = "\n".join(f"{t} {p.decode('utf-8', 'replace')}" for t, p in messages)
    logs = log_path.read_text(encoding="utf-8", errors="replace")
    redis_dump = "\n".join(
        tls_redis.cli("--no-raw", *command)
        for command in (
            ("XRANGE", stream, "-", "+"),
            ("XRANGE", f"edge:{{{GATEWAY_ID}}}:windows", "-", "+"),
            ("HGETALL", "edge:gateways"),
            ("KEYS", "*"),
        )
    )
    assert logs.strip(), "the gateway logged nothing"
    assert len(messages) > 5, "too few messages to make the check meaningful"
    assert _leaks(logs, secrets) == [], f"secret in the logs:\n{logs[-3000:]}"
    assert _leaks(published, secrets) == [], "secret in a published message"
    assert _leaks(redis_dump, secrets) == [], "secret written to Redis"


def _run_until_exit(tmp_path: Path, config: Path, env: dict[str, str]) -> tuple[int, str]:
    log_path = tmp_path / "start.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [_edge_gateway(), "run", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    try:
        code = process.wait(timeout=RUN_DEADLINE_S)
    finally:
        terminate_quietly(process)
    return code, log_path.read_text(encoding="utf-8", errors="replace")


@pytest.mark.parametrize("broken", ["wrong_password", "wrong_ca"])
def test_refused_mqtt_at_start_exits_non_zero_with_one_line(
    tmp_path: Path,
    pki: Pki,
    tls_mosquitto: TlsMosquitto,
    tls_redis: TlsRedisServer,
    credentials: Credentials,
    broken: str,
) -> None:
    config = tmp_path / "gateway" / "gateway.toml"
    config.parent.mkdir()
    _write_config(config, pki, tls_mosquitto, tls_redis, credentials)
    env = {"EDGE_GATEWAY_REDIS__PASSWORD": credentials.redis_gateway}
    if broken == "wrong_password":
        (config.parent / "mqtt.password").write_text("not-the-password\n")
    else:
        env["EDGE_GATEWAY_MQTT__TLS__CA_FILE"] = str(pki.other_ca.cert)
    code, output = _run_until_exit(tmp_path, config, env)  # exits by itself within the deadline
    assert code != 0, output
    assert "Traceback" not in output
    assert "refused" in output.lower(), output[-2000:]
    # No retry storm: a refusal is final at start.
    attempts = [line for line in output.splitlines() if "gateway.ingest.mqtt" in line]
    assert len(attempts) <= 3, attempts
    assert _leaks(output, [credentials.mqtt_gateway, credentials.redis_gateway]) == []


def test_check_hostname_false_reaches_a_broker_whose_certificate_names_another_host(
    tmp_path: Path,
    pki: Pki,
    tls_mosquitto_factory: Callable[..., TlsMosquitto],
    tls_redis: TlsRedisServer,
    credentials: Credentials,
) -> None:
    broker = tls_mosquitto_factory(server_cert=pki.server_other_host)
    config = tmp_path / "gateway" / "gateway.toml"
    config.parent.mkdir()
    _write_config(config, pki, broker, tls_redis, credentials)
    config.write_text(
        config.read_text().replace("[mqtt.tls]\n", "[mqtt.tls]\ncheck_hostname = false\n")
    )
    env = {**os.environ, "EDGE_GATEWAY_REDIS__PASSWORD": credentials.redis_gateway}
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [_edge_gateway(), "run", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        context = client_ssl_context(TlsConfig(ca_file=pki.ca.cert, check_hostname=False))
        with connected("127.0.0.1", broker.port, "monitor", credentials.mqtt_monitor,
                       context) as monitor:
            monitor.subscribe(f"{PREFIX}/status")
            monitor.received.wait_until(
                lambda messages: any(b'"online"' in p for _, p in messages),
                "the gateway's online status",
                RUN_DEADLINE_S,
            )
    finally:
        terminate_quietly(process)


def test_refused_redis_credentials_are_reported_without_the_secret(
    tmp_path: Path,
    pki: Pki,
    tls_mosquitto: TlsMosquitto,
    tls_redis: TlsRedisServer,
    credentials: Credentials,
) -> None:
    config = tmp_path / "gateway" / "gateway.toml"
    config.parent.mkdir()
    _write_config(config, pki, tls_mosquitto, tls_redis, credentials)
    wrong = credentials.redis_gateway + "-wrong"
    env = {**os.environ, "EDGE_GATEWAY_REDIS__PASSWORD": wrong}
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [_edge_gateway(), "run", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        # Refused credentials at start: exit non-zero with the reason (no retry storm).
        wait_for(lambda: process.poll() is not None, RUN_DEADLINE_S,
                 "the gateway to exit on the refused Redis password", interval=0.1)
        assert process.returncode != 0
    finally:
        terminate_quietly(process)
    assert _refusal_lines(log_path), "the refusal was not reported"
    output = log_path.read_text(encoding="utf-8", errors="replace")
    # (Debug logging is on, so the debug traceback is in the output too: it must be clean.)
    assert _leaks(output, [wrong, credentials.mqtt_gateway]) == []


def _refusal_lines(log_path: Path) -> list[str]:
    return [
        line
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        if (" WARNING " in line or " ERROR " in line) and "refused" in line
    ]
