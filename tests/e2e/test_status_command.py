"""`edge-gateway status` reads the retained status: exit 0 online, 1 offline."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import tomli_w

from tests.gateway_runner import gateway_config, running_gateway
from tests.services import Mosquitto


async def _status(config: Path, within: str = "10") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "status", "-c", str(config), "--timeout", within,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_status_reports_online_then_offline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    data = gateway_config(mosquitto.port, tmp_path / "s.db")
    config = tmp_path / "gw.toml"
    config.write_text(tomli_w.dumps(data))
    async with running_gateway(data):
        code, out = await _status(config)
        assert code == 0, out
        assert "gw-test: online" in out
    code, out = await _status(config)
    assert code == 1
    assert "gw-test: offline" in out


async def test_status_of_a_gateway_never_seen(mosquitto: Mosquitto, tmp_path: Path) -> None:
    data = gateway_config(mosquitto.port, tmp_path / "s.db", gateway_id="nobody")
    config = tmp_path / "gw.toml"
    config.write_text(tomli_w.dumps(data))
    code, out = await _status(config, within="1")
    assert code == 1
    assert "no status from gateway 'nobody'" in out
