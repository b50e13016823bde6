"""TLS to a real redis-server: CA-verified server certificate, client certificate (mutual
TLS), hostname check, and a certificate signed by the wrong CA refused as a config error."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import RedisConfig, TlsConfig
from gateway.state import (
    RedisBackend,
    StateConfigError,
    StatefulOperator,
    connect_redis,
    ping_redis,
)
from tests.services import find_binary, free_port, terminate_quietly
from tests.state.conftest import FakeClock, eventually

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _make_ca(directory: Path, name: str) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        cwd=directory,
    )


def _make_cert(directory: Path, name: str, ca: str) -> None:
    (directory / f"{name}.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=directory,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
        cwd=directory,
    )


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server that only speaks TLS and wants a client certificate."""
    certs = tmp_path / "certs"
    certs.mkdir()
    _make_ca(certs, "ca")
    _make_ca(certs, "other-ca")
    _make_cert(certs, "server", "ca")
    _make_cert(certs, "client", "ca")
    port = free_port()
    log = (tmp_path / "redis-tls.out").open("wb")
    process = subprocess.Popen(
        [
            find_binary("redis-server"),
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--tls-cert-file",
            str(certs / "server.crt"),
            "--tls-key-file",
            str(certs / "server.key"),
            "--tls-ca-cert-file",
            str(certs / "ca.crt"),
            "--tls-auth-clients",
            "yes",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        yield port, certs
    finally:
        terminate_quietly(process)


def _cfg(port: int, certs: Path, ca: str = "ca", host: str = "localhost") -> RedisConfig:
    return RedisConfig(
        url=f"rediss://{host}:{port}/0",
        socket_timeout=2_000,
        tls=TlsConfig(
            ca_file=certs / f"{ca}.crt",
            cert_file=certs / "client.crt",
            key_file=certs / "client.key",
        ),
    )


async def _ping(cfg: RedisConfig) -> bool:
    client = connect_redis(cfg)
    try:
        await ping_redis(client, cfg)
    except StateConfigError:
        raise
    except Exception:
        return False
    finally:
        await client.aclose()
    return True


async def test_mutual_tls_round_trip(tls_redis: tuple[int, Path], clock: FakeClock) -> None:
    port, certs = tls_redis
    cfg = _cfg(port, certs)
    await eventually(lambda: _ping(cfg), "the TLS redis-server to answer")
    async with (
        RedisBackend(cfg, "gw-tls") as backend,
        StatefulOperator(backend, "tls", now_ms=clock) as op,
    ):
        op.put("k", {"v": 1})
        await op.flush()
        assert await backend.load("tls", clock.now) == {"k": (b'{"v":1}', None)}


async def test_wrong_ca_is_a_config_error(tls_redis: tuple[int, Path]) -> None:
    port, certs = tls_redis
    await eventually(lambda: _ping(_cfg(port, certs)), "the TLS redis-server to answer")
    bad = _cfg(port, certs, ca="other-ca")
    client = connect_redis(bad)
    try:
        with pytest.raises(StateConfigError, match="TLS certificate rejected"):
            await ping_redis(client, bad)
    finally:
        await client.aclose()
