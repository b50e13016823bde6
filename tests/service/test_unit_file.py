"""systemd/edge-gateway.service: valid for systemd, hardened to an exposure of at most 1.2.

``systemd-analyze verify`` checks that ExecStart= names an executable that exists; the unit
names /opt/edge-gateway/venv/bin/edge-gateway, which exists only after an install. The test
therefore verifies a copy whose ExecStart points at this checkout's own console script (same
arguments, same everything else) and accepts no warning at all.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "edge-gateway.service"
INSTALLED_EXEC = "/opt/edge-gateway/venv/bin/edge-gateway"
MAX_EXPOSURE = 1.2

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (package systemd)"
)


def _directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _supports_offline() -> bool:
    assert SYSTEMD_ANALYZE is not None
    help_text = subprocess.run(
        [SYSTEMD_ANALYZE, "--help"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    return "--offline" in help_text


def test_unit_has_the_service_contract() -> None:
    d = _directives(UNIT.read_text())
    assert d["Type"] == ["notify"]
    assert d["NotifyAccess"] == ["main"]
    assert d["WatchdogSec"] == ["30"]
    assert d["Restart"] == ["on-failure"]
    assert "StartLimitIntervalSec" in d
    assert "StartLimitBurst" in d
    assert d["ExecStart"] == [INSTALLED_EXEC + " run -c ${EDGE_GATEWAY_CONFIG}"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert "EDGE_GATEWAY_CONFIG=/etc/edge-gateway/gateway.toml" in d["Environment"]
    assert "EDGE_GATEWAY_STATE__PATH=/var/lib/edge-gateway/state.db" in d["Environment"]
    assert d["StateDirectory"] == ["edge-gateway"]
    assert d["ConfigurationDirectory"] == ["edge-gateway"]
    assert d["LogsDirectory"] == ["edge-gateway"]
    assert d["DynamicUser"] == ["yes"]
    assert d["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert "TimeoutStopSec" in d


@needs_systemd_analyze
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    console_script = Path(sys.executable).parent / "edge-gateway"
    if not console_script.exists():
        pytest.skip("the edge-gateway console script is not installed in this environment")
    copy = tmp_path / "edge-gateway.service"
    text = UNIT.read_text()
    assert INSTALLED_EXEC in text
    copy.write_text(text.replace(INSTALLED_EXEC, str(console_script)))
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(copy)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert output == ""


@needs_systemd_analyze
def test_security_exposure_is_at_most_1_2() -> None:
    assert SYSTEMD_ANALYZE is not None
    if not _supports_offline():
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for edge-gateway\.service: ([0-9.]+)", output)
    assert match, output
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, output


def test_every_sandbox_directive_is_set() -> None:
    d = _directives(UNIT.read_text())
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "PrivateUsers": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
    }
    for key, value in expected.items():
        assert d.get(key) == [value], key


def test_left_out_directives_are_explained() -> None:
    text = UNIT.read_text()
    for left_out in ("PrivateNetwork=", "IPAddressDeny=", "RootDirectory=", "User=/Group="):
        assert re.search(rf"^# {re.escape(left_out)}\S*\s+\S", text, re.MULTILINE), left_out
