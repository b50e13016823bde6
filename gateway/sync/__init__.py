"""Sync: store-and-forward from the outbox to Redis (or Redis Cluster), and alert forwarding
to an upstream MQTT broker and a webhook — each sink with its own outbox cursor.

See ``docs/sync.md`` for the keys, the idempotency argument and what the operator sees.

The Redis sink's parts are imported on first use: the client library is ~8 MB of a gateway's
memory, wasted on one without ``[redis]``.
"""

import typing as _typing

from gateway._lazy import lazy_attributes as _lazy_attributes
from gateway.sync._errors import SinkRefused, SinkUnavailable, SyncError
from gateway.sync._forward_mqtt import MQTT_FORWARD_CURSOR, MqttForwarder
from gateway.sync._forward_webhook import WEBHOOK_CURSOR, WebhookForwarder
from gateway.sync._outbox import Outbox, OutboxEntryLike, OutboxSignal, OutboxStatsLike

if _typing.TYPE_CHECKING:
    from gateway.sync._redis_sync import REDIS_CURSOR, RedisSync, redis_status_unconfigured
    from gateway.sync._writer import ApplyResult, RedisWriter

_LAZY = {
    "REDIS_CURSOR": "gateway.sync._redis_sync",
    "RedisSync": "gateway.sync._redis_sync",
    "redis_status_unconfigured": "gateway.sync._redis_sync",
    "ApplyResult": "gateway.sync._writer",
    "RedisWriter": "gateway.sync._writer",
}

__all__ = [
    "MQTT_FORWARD_CURSOR",
    "REDIS_CURSOR",
    "WEBHOOK_CURSOR",
    "ApplyResult",
    "MqttForwarder",
    "Outbox",
    "OutboxEntryLike",
    "OutboxSignal",
    "OutboxStatsLike",
    "RedisSync",
    "RedisWriter",
    "SinkRefused",
    "SinkUnavailable",
    "SyncError",
    "WebhookForwarder",
    "redis_status_unconfigured",
]


__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, globals())
