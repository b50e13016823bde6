"""Run a real gateway for a test: in-process (fast, inspectable) or as a child process
(for signals, crashes and restarts)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig, config_from_dict
from gateway.runtime import Gateway


def gateway_config(
    broker_port: int, state_path: Path, *, sensors: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A config dict for tests: one JSON temperature sensor unless ``sensors`` is given."""
    data: dict[str, Any] = {
        "gateway_id": "gw-test",
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "reconnect_max": "1s"},
        "state": {"backend": "sqlite", "path": str(state_path), "checkpoint_interval": "1s"},
        "status": {"interval": "1s", "device_interval": "250ms"},
        "sensors": sensors
        or [
            {
                "name": "temperature",
                "topic": "site/+/temperature",
                "device": "{1}",
                "format": "json",
                "value": "temp",
                "timestamp": "ts",
                "window": {"type": "tumbling", "size": "10s"},
                "watermark": {"strategy": "bounded", "max_delay": "5s", "idle_timeout": "1h"},
            }
        ],
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


@asynccontextmanager
async def running_gateway(
    config: GatewayConfig | dict[str, Any], **options: Any
) -> AsyncIterator[Gateway]:
    if isinstance(config, dict):
        config = config_from_dict(config)
    gateway = Gateway(config, **options)
    task = asyncio.create_task(gateway.run(), name="test-gateway")
    ready = asyncio.create_task(gateway.ready.wait())
    await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if not gateway.ready.is_set():
        ready.cancel()
        if task.done():
            task.result()
        task.cancel()
        raise TimeoutError("gateway did not become ready")
    try:
        yield gateway
    finally:
        gateway.stop()
        await asyncio.wait_for(task, 20)


class GatewayProcess:
    """``edge-gateway run -c FILE`` as a child process."""

    def __init__(self, config_path: Path, log_path: Path, env: dict[str, str] | None = None):
        self.config_path = config_path
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "-c", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 20.0, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log()[after:]:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gateway exited ({self.process.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway log never said {text!r}:\n{self.log()[-3000:]}")
            time.sleep(0.02)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
