"""The test harness itself: real servers start, stop, restart and keep their data."""

from __future__ import annotations

import socket

from tests.services import Mosquitto, RedisCluster, RedisServer


def _can_connect(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_mosquitto_restarts_on_same_port(mosquitto: Mosquitto) -> None:
    assert _can_connect(mosquitto.port)
    mosquitto.kill()
    assert not _can_connect(mosquitto.port)
    mosquitto.start()
    assert _can_connect(mosquitto.port)


def test_redis_keeps_data_across_restart(redis_server: RedisServer) -> None:
    redis_server.cli("SET", "k", "v")
    redis_server.restart()
    assert redis_server.cli("GET", "k").strip() == "v"


def test_redis_cluster_is_ok(redis_cluster: RedisCluster) -> None:
    info = redis_cluster.nodes[0].cli("CLUSTER", "INFO")
    assert "cluster_state:ok" in info
    assert "cluster_known_nodes:3" in info
