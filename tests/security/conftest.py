"""Security test bed: a test PKI, a TLS-only Mosquitto with a password file and an ACL, and a
TLS-only redis-server with ACL users. Everything is generated per test session/test.

Users (passwords are random per session, see :class:`Credentials`):

- MQTT ``gateway``: reads sensor topics and its prefix, writes its outputs (not commands);
  ``dashboard``: reads the gateway's outputs, the only user that may publish commands;
  ``sensor``: may publish sensor readings only; ``monitor`` (tests only) reads every topic.
- Redis ``gateway``: keys ``edge:{gw-sec}:*`` and ``edge:gateways`` only, no dangerous
  commands; ``admin``: everything (the fixture's own health checks); ``default`` is off.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.security.pki import CertFiles, Pki, make_pki
from tests.services import Mosquitto, RedisServer, ServiceError, find_binary

GATEWAY_ID = "gw-sec"
PREFIX = f"edge-gateway/{GATEWAY_ID}"
COMMAND_TOPIC = f"{PREFIX}/commands"


@dataclass(frozen=True)
class Credentials:
    """Random passwords of every test user (MQTT and Redis)."""

    mqtt_gateway: str
    mqtt_dashboard: str
    mqtt_sensor: str
    mqtt_monitor: str
    redis_gateway: str
    redis_admin: str

    def all(self) -> list[str]:
        return [
            self.mqtt_gateway,
            self.mqtt_dashboard,
            self.mqtt_sensor,
            self.mqtt_monitor,
            self.redis_gateway,
            self.redis_admin,
        ]


def _password() -> str:
    # Characters that need escaping in URLs and JSON, so redaction of every form is tested.
    return f"pw-{secrets.token_urlsafe(12)}@/%\"'"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """CA, other CA, server certificates (good, other host, expired) and client certificates."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def credentials() -> Credentials:
    """Random passwords for the session's users."""
    return Credentials(*(_password() for _ in range(6)))


MOSQUITTO_ACL = f"""\
# Mosquitto ACL of the security tests (the same shape as docs/security.md).
# Sensors publish readings only.
user sensor
topic write site/#

# The gateway reads sensors and everything under its prefix (its command topic included)
# and writes its outputs, but not commands.
user gateway
topic read site/#
topic read {PREFIX}/#
topic write {PREFIX}/status
topic write {PREFIX}/alerts
topic write {PREFIX}/alerts/active
topic write {PREFIX}/windows/#
topic write {PREFIX}/late/#
topic write {PREFIX}/devices/#
topic write {PREFIX}/deadletter

# The dashboard reads the gateway's outputs and is the only one that may send commands.
user dashboard
topic read {PREFIX}/#
topic write {COMMAND_TOPIC}

# Tests only: a read-only observer of every topic.
user monitor
topic read #
"""


def write_mosquitto_password_file(path: Path, users: dict[str, str]) -> None:
    """A Mosquitto password file (hashed by mosquitto_passwd) for ``users``."""
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    for user, password in users.items():
        # -b takes the password on the command line: acceptable for a test on a private host.
        subprocess.run(
            [find_binary("mosquitto_passwd"), "-b", str(path), user, password],
            check=True,
            capture_output=True,
            timeout=30,
        )


class TlsMosquitto(Mosquitto):
    """A Mosquitto whose only listener is TLS, with a password file and an ACL."""

    def __init__(
        self,
        workdir: Path,
        pki: Pki,
        credentials: Credentials,
        *,
        server_cert: CertFiles | None = None,
        require_certificate: bool = False,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        server_cert = server_cert or pki.server
        self.pki = pki
        self.credentials = credentials
        self.password_file = workdir / "passwd"
        self.acl_file = workdir / "acl"
        write_mosquitto_password_file(
            self.password_file,
            {
                "gateway": credentials.mqtt_gateway,
                "dashboard": credentials.mqtt_dashboard,
                "sensor": credentials.mqtt_sensor,
                "monitor": credentials.mqtt_monitor,
            },
        )
        self.acl_file.write_text(MOSQUITTO_ACL)
        extra = (
            # These follow the base config's only `listener` line, so they make it TLS-only.
            f"cafile {pki.ca.cert}\n"
            f"certfile {server_cert.cert}\n"
            f"keyfile {server_cert.key}\n"
            "tls_version tlsv1.2\n"
            f"require_certificate {'true' if require_certificate else 'false'}\n"
            "allow_anonymous false\n"
            f"password_file {self.password_file}\n"
            f"acl_file {self.acl_file}\n"
        )
        super().__init__(workdir, extra_conf=extra)


class TlsRedisServer(RedisServer):
    """A redis-server listening on TLS only (``--port 0``) with ACL users."""

    def __init__(
        self,
        workdir: Path,
        pki: Pki,
        credentials: Credentials,
        *,
        server_cert: CertFiles | None = None,
        auth_clients: str = "optional",
        tls_protocols: str = "TLSv1.2 TLSv1.3",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        server_cert = server_cert or pki.server
        self.pki = pki
        self.credentials = credentials
        self.acl_file = workdir / "users.acl"
        self.acl_file.write_text(redis_acl(credentials))
        self.acl_file.chmod(0o600)
        super().__init__(
            workdir,
            None,
            "--port", "0",
            "--tls-port", "{port}",
            "--tls-cert-file", str(server_cert.cert),
            "--tls-key-file", str(server_cert.key),
            "--tls-ca-cert-file", str(pki.ca.cert),
            "--tls-auth-clients", auth_clients,
            "--tls-protocols", tls_protocols,
            "--aclfile", str(self.acl_file),
        )
        self.extra = [a.replace("{port}", str(self.port)) for a in self.extra]

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def ready(self) -> bool:
        try:
            # --insecure: the fixture also serves expired and wrong-host certificates.
            return self.cli("--insecure", "PING", check=False).strip() == "PONG"
        except subprocess.TimeoutExpired:
            return False

    def cli(self, *args: str, check: bool = True) -> str:
        """redis-cli over TLS as the ``admin`` user (options may precede the command)."""
        env = {**os.environ, "REDISCLI_AUTH": self.credentials.redis_admin}
        result = subprocess.run(
            [
                find_binary("redis-cli"), "--tls", "--cacert", str(self.pki.ca.cert),
                "--cert", str(self.pki.client.cert), "--key", str(self.pki.client.key),
                "-h", "127.0.0.1", "-p", str(self.port), "--user", "admin", *args,
            ],
            capture_output=True, text=True, timeout=10, check=False, env=env,
        )
        if check and result.returncode != 0:
            raise ServiceError(f"redis-cli {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout


def redis_acl(credentials: Credentials) -> str:
    """The ACL file: passwords stored as SHA-256 hashes, ``default`` off."""

    def sha(password: str) -> str:
        return "#" + hashlib.sha256(password.encode()).hexdigest()

    return (
        "user default off\n"
        f"user admin on {sha(credentials.redis_admin)} ~* &* +@all\n"
        # Only this gateway's keys (hash tag) and the shared heartbeat hash (docs/security.md).
        f"user gateway on {sha(credentials.redis_gateway)} ~edge:{{{GATEWAY_ID}}}:* "
        "~edge:gateways resetchannels "
        "-@all +@read +@write +@stream +@hash +@scripting +@connection +@transaction "
        "-@dangerous\n"
    )


@pytest.fixture
def tls_mosquitto_factory(
    tmp_path: Path, pki: Pki, credentials: Credentials
) -> Iterator[Callable[..., TlsMosquitto]]:
    """Start TLS Mosquittos: ``factory(server_cert=pki.server_expired)``, mTLS with
    ``require_certificate=True``."""
    started: list[TlsMosquitto] = []

    def start(**kwargs: object) -> TlsMosquitto:
        server = TlsMosquitto(
            tmp_path / f"mosquitto-tls-{len(started)}",
            pki,
            credentials,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def tls_mosquitto(tls_mosquitto_factory: Callable[..., TlsMosquitto]) -> TlsMosquitto:
    """A TLS-only Mosquitto with the good server certificate, password file and ACL."""
    return tls_mosquitto_factory()


@pytest.fixture
def tls_redis_factory(
    tmp_path: Path, pki: Pki, credentials: Credentials
) -> Iterator[Callable[..., TlsRedisServer]]:
    """Start TLS redis-servers: ``factory(server_cert=..., auth_clients="yes")``."""
    started: list[TlsRedisServer] = []

    def start(**kwargs: object) -> TlsRedisServer:
        server = TlsRedisServer(
            tmp_path / f"redis-tls-{len(started)}",
            pki,
            credentials,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def tls_redis(tls_redis_factory: Callable[..., TlsRedisServer]) -> TlsRedisServer:
    """A TLS-only redis-server with the good server certificate and ACL users."""
    return tls_redis_factory()
