"""edge-gateway: MQTT in, per-device event-time windows and anomaly detection, durable state,
sync to Redis."""

__version__ = "0.1.0"
