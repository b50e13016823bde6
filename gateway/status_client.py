"""Read a gateway's retained status message (for ``edge-gateway status`` and scripts)."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import GatewayConfig
from gateway.security import client_ssl_context


def fetch_status(config: GatewayConfig, timeout: float = 5.0) -> dict[str, Any] | None:
    """The retained ``<prefix>/status`` JSON, or ``None`` when none arrives in time."""
    received: dict[str, Any] = {}
    done = threading.Event()
    topic = f"{config.prefix}/status"
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    if config.mqtt.username is not None:
        client.username_pw_set(config.mqtt.username, config.mqtt.password_value())
    if config.mqtt.tls is not None:
        client.tls_set_context(client_ssl_context(config.mqtt.tls))

    def on_connect(c: paho.Client, *_: object) -> None:
        c.subscribe(topic, qos=1)

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            value = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            return
        if isinstance(value, dict):
            received.update(value)
            done.set()

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(config.mqtt.host, config.mqtt.port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return received or None
