"""A broker that refuses the dashboard's credentials ends it with exit code 2 and one line."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC
from pathlib import Path

import pytest

from gateway.dashboard import DashboardApp, MqttSource
from gateway.dashboard._source import ConnectionState
from gateway.dashboard.app import EXIT_REFUSED
from tests.dashboard.conftest import wait_until
from tests.dashboard.recorded import GATEWAY, PREFIX, T0
from tests.services import Mosquitto

DEADLINE_S = 15.0


@pytest.fixture
def locked_broker(tmp_path: Path) -> Mosquitto:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    passwords = tmp_path / "passwords"
    subprocess.run([tool, "-c", "-b", str(passwords), "operator", "right"], check=True)
    passwords.chmod(0o600)
    return Mosquitto(
        tmp_path / "mosquitto",
        extra_conf=f"allow_anonymous false\npassword_file {passwords}\n",
    )


async def test_wrong_credentials_end_the_dashboard(locked_broker: Mosquitto) -> None:
    locked_broker.start()
    try:
        source = MqttSource(
            host=locked_broker.host, port=locked_broker.port, username="operator", password="wrong"
        )
        app = DashboardApp(prefix=PREFIX, gateway_id=GATEWAY, source=source, now=lambda: T0, tz=UTC)
        # The app ends itself; the deadline only guards against it never doing so.
        async with asyncio.timeout(DEADLINE_S):
            await app.run_async(headless=True, size=(120, 30))
        assert app.return_code == EXIT_REFUSED
    finally:
        locked_broker.kill()


async def test_right_credentials_connect(locked_broker: Mosquitto) -> None:
    locked_broker.start()
    try:
        source = MqttSource(
            host=locked_broker.host, port=locked_broker.port, username="operator", password="right"
        )
        app = DashboardApp(prefix=PREFIX, gateway_id=GATEWAY, source=source, now=lambda: T0, tz=UTC)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_until(
                pilot,
                lambda: app.view.connection.state is ConnectionState.SYNCED,
                "the dashboard connected with credentials",
            )
    finally:
        locked_broker.kill()
