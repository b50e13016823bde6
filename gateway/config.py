"""The gateway's one configuration file: TOML, validated by pydantic-settings.

Every key can be overridden by an environment variable ``EDGE_GATEWAY_<SECTION>__<KEY>``
(``EDGE_GATEWAY_MQTT__PORT=1884``). Secrets are :class:`~pydantic.SecretStr` and may come from
a file (``password_file``, trailing newline stripped); they never appear in ``repr``, logs or
errors. Durations are strings such as ``"250ms"``, ``"10s"``, ``"5m"`` (or seconds as a
number) and are held as ``int`` milliseconds.

:func:`load_config` reads a file; :class:`ConfigError` carries one line per bad key.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from devices.profiles import FORMATS
from gateway.detect.config import DetectorConfig
from gateway.durations import Duration

DEFAULT_CONFIG_PATH = Path("/etc/edge-gateway/gateway.toml")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_TEMPLATE_FIELD = re.compile(r"\{(\d+)\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class TlsConfig(_Section):
    """TLS for a client connection (MQTT or Redis)."""

    ca_file: Path | None = None
    """CA bundle that signs the server's certificate; the system store when absent."""
    cert_file: Path | None = None
    """Client certificate for mutual TLS."""
    key_file: Path | None = None
    """Private key of ``cert_file``."""
    check_hostname: bool = True
    """Verify that the server certificate names the host we connect to."""

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name} {str(path)!r} is not a readable file")
        return self


class _Credentials(_Section):
    username: str | None = None
    """User name for authentication."""
    password: SecretStr | None = None
    """Password; prefer ``password_file`` or the environment so it stays out of the file."""
    password_file: Path | None = None
    """File holding the password (trailing newline stripped)."""

    @model_validator(mode="after")
    def _read_password_file(self) -> Self:
        if self.password_file is None:
            return self
        if self.password is not None:
            raise ValueError("give password or password_file, not both")
        try:
            secret = Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(
                f"password_file {str(self.password_file)!r} cannot be read: {exc.strerror}"
            ) from None
        object.__setattr__(self, "password", SecretStr(secret))
        return self

    def password_value(self) -> str | None:
        return None if self.password is None else self.password.get_secret_value()


class MqttConfig(_Credentials):
    """The local broker the sensors publish to."""

    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = Field(1883, ge=1, le=65535)
    """Broker port (8883 is the usual TLS port)."""
    client_id: str | None = None
    """MQTT client id; derived from ``gateway_id`` when absent, stable so the session persists."""
    tls: TlsConfig | None = None
    """TLS settings; absent = plain TCP."""
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    """MQTT version: ``auto`` tries 5 and falls back to 3.1.1."""
    keepalive: Duration = 30_000
    """Keep-alive interval."""
    session_expiry: Duration = 86_400_000
    """How long the broker keeps our session (and queues QoS 1 readings) while we are away."""
    prefix: str | None = None
    """Topic prefix of everything the gateway publishes; ``edge-gateway/<gateway_id>``."""
    qos: Literal[0, 1] = 1
    """QoS of the sensor subscriptions; 1 is needed for the no-loss guarantee."""
    stall_timeout: Duration = 60_000
    """No message for this long while connected and subscribed = the intake is reported stalled
    and every subscription is renewed."""
    reconnect_max: Duration = 30_000
    """Upper bound of the reconnect backoff."""


class StateConfig(_Section):
    """Where the gateway keeps its state."""

    backend: Literal["memory", "sqlite", "redis"] = "sqlite"
    """``memory`` (lost on exit), ``sqlite`` (a file; survives crashes and power loss) or
    ``redis`` (the ``[redis]`` server)."""
    path: Path = Path("/var/lib/edge-gateway/state.db")
    """The SQLite file (backend ``sqlite``); its directory must be writable."""
    checkpoint_interval: Duration = 5_000
    """How often every device's state is checkpointed."""
    keep_checkpoints: int = Field(3, ge=1, le=100)
    """Complete checkpoints kept; older ones are pruned."""
    commit_interval: Duration = 20
    """Group commit: readings are made durable (and acknowledged) at least this often."""


class RedisConfig(_Credentials):
    """The central Redis (or Redis Cluster) that results and alerts are synced to."""

    url: str = "redis://127.0.0.1:6379/0"
    """``redis://`` or ``rediss://`` (TLS) URL; credentials belong in username/password."""
    cluster: bool = False
    """The URL names one node of a Redis Cluster."""
    tls: TlsConfig | None = None
    """CA and client certificate for ``rediss://``."""
    socket_timeout: Duration = 5_000
    """Timeout of one Redis command."""

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {value!r}")
        if re.match(r"^rediss?://[^/@]*:[^/@]*@", value):
            raise ValueError("put the password in password or password_file, not in the URL")
        return value


class SyncConfig(_Section):
    """Store-and-forward from the local outbox to Redis."""

    max_outbox_mb: float = Field(256.0, gt=0)
    """Disk quota of the outbox; past it the oldest non-alert entries are dropped (counted)."""
    batch_size: int = Field(500, ge=1, le=100_000)
    """Outbox entries per Redis pipeline."""
    windows_maxlen: int = Field(100_000, ge=1)
    """Approximate cap of the ``windows`` stream in Redis."""
    heartbeat_interval: Duration = 10_000
    """How often the gateway's heartbeat is written to ``edge:gateways``."""
    retry_max: Duration = 30_000
    """Upper bound of the backoff while Redis is unreachable."""


class UpstreamMqttConfig(_Credentials):
    """A second broker that alerts are republished to."""

    host: str
    """Upstream broker host."""
    port: int = Field(8883, ge=1, le=65535)
    """Upstream broker port."""
    tls: TlsConfig | None = None
    """TLS settings for the upstream broker."""
    topic: str = "edge-gateway/{gateway_id}/alerts"
    """Topic the alerts are published to (``{gateway_id}`` is replaced)."""
    client_id: str | None = None
    """Client id at the upstream broker; derived from ``gateway_id`` when absent."""


class WebhookConfig(_Section):
    """An HTTP endpoint that receives each alert as a JSON POST."""

    url: str
    """``https://`` (or ``http://``) URL."""
    timeout: Duration = 5_000
    """Timeout of one request."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Extra headers (e.g. an Authorization token); treated as secrets."""


class ForwardConfig(_Section):
    """Alert forwarding besides Redis; each sink has its own outbox cursor."""

    mqtt: UpstreamMqttConfig | None = None
    """Republish alerts to an upstream broker."""
    webhook: WebhookConfig | None = None
    """POST alerts to a webhook."""


class LimitsConfig(_Section):
    """What the gateway accepts from the outside world."""

    max_payload_bytes: int = Field(65_536, ge=16)
    """Larger MQTT payloads are rejected before they are parsed."""
    max_json_depth: int = Field(32, ge=1, le=1000)
    """Deeper JSON nesting is rejected."""
    max_clock_skew: Duration = 300_000
    """Readings stamped further in the future are rejected."""
    max_age: Duration = 86_400_000
    """Readings older than this are rejected."""
    max_rate_per_device: float = Field(1_000.0, gt=0)
    """Readings per second one device may send; the excess is dropped and counted."""
    max_devices: int = Field(10_000, ge=1)
    """Devices beyond this are refused (and counted)."""
    deadletter_per_s: float = Field(10.0, gt=0)
    """Rate limit of messages published to ``<prefix>/deadletter``."""


class ActorsConfig(_Section):
    """The per-device actors."""

    mailbox_size: int = Field(10_000, ge=1)
    """Readings queued per device; then the intake waits, then the oldest are dropped."""
    max_restarts: int = Field(5, ge=0)
    """Restarts within ``restart_window`` before a failing device actor is parked."""
    restart_window: Duration = 60_000
    """Window over which restarts are counted."""
    backoff_initial: Duration = 100
    """First restart delay; doubles up to ``backoff_max``."""
    backoff_max: Duration = 30_000
    """Largest restart delay."""
    passivate_after: Duration = 600_000
    """An actor idle this long is written out and dropped from memory."""


class StatusConfig(_Section):
    """The retained health message and live device state."""

    interval: Duration = 5_000
    """How often ``<prefix>/status`` is refreshed."""
    device_interval: Duration = 1_000
    """At most one ``<prefix>/devices/<device>`` update per device per interval."""


class MetricsConfig(_Section):
    """Prometheus metrics endpoint."""

    enabled: bool = False
    """Serve metrics over HTTP."""
    host: str = "127.0.0.1"
    """Address to listen on (keep it local)."""
    port: int = Field(9108, ge=1, le=65535)
    """Port to listen on."""


class LoggingConfig(_Section):
    """Log output (stderr: journald when run by systemd)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe level logged."""
    json_format: bool = Field(False, alias="json")
    """One JSON object per line instead of text."""


class WindowConfig(_Section):
    """A sensor's event-time window."""

    type: Literal["tumbling", "sliding", "session"] = "tumbling"
    """Window kind."""
    size: Duration = 10_000
    """Window length (tumbling and sliding)."""
    slide: Duration | None = None
    """Step between sliding windows; must divide ``size``."""
    gap: Duration | None = None
    """Inactivity gap that closes a session window."""
    offset: Duration = 0
    """Shift of tumbling window boundaries from the epoch."""

    @model_validator(mode="after")
    def _kind_needs(self) -> Self:
        if self.size <= 0:
            raise ValueError("size must be positive")
        if self.type == "sliding":
            if self.slide is None or self.slide <= 0:
                raise ValueError("a sliding window needs slide, e.g. slide = \"5s\"")
            if self.size % self.slide:
                raise ValueError("slide must divide size evenly")
        if self.type == "session" and (self.gap is None or self.gap <= 0):
            raise ValueError("a session window needs gap, e.g. gap = \"30s\"")
        return self


class WatermarkConfig(_Section):
    """How a device's event-time progress is tracked."""

    strategy: Literal["bounded", "monotonic", "periodic"] = "bounded"
    """bounded: W = newest event time - max_delay; monotonic: W = newest event time;
    periodic: W advances with processing time every ``interval``."""
    max_delay: Duration = 5_000
    """Out-of-orderness tolerated (bounded and periodic)."""
    idle_timeout: Duration | None = 30_000
    """After this long without readings a device's open windows fire."""
    interval: Duration = 1_000
    """Processing-time period of the periodic strategy."""


class LateConfig(_Section):
    """What happens to a reading whose window has already fired."""

    strategy: Literal["drop", "allowed_lateness", "side_output", "recompute"] = "drop"
    """drop (counted), allowed_lateness (update and re-fire), side_output
    (``<prefix>/late/...``) or recompute (keep windows for ``retention``)."""
    max_lateness: Duration = 0
    """How long a fired window still accepts late readings (allowed_lateness)."""
    retention: Duration = 60_000
    """How long fired windows are kept for recomputation (recompute)."""


AggregateName = Literal["stddev", "first", "last", "p50", "p90", "p95", "p99"]


class SensorConfig(_Section):
    """One kind of reading: which topics, how to decode, how to window and watch it."""

    name: str
    """The sensor's name: the ``sensor`` field of every output."""
    topic: str
    """MQTT topic filter, e.g. ``site/+/temperature``."""
    device: str = "{1}"
    """Device id from topic levels (0-based), e.g. ``"{1}"`` or ``"{0}-{2}"``."""
    format: str = "json"
    """Payload format: json, number, csv, senml, zigbee2mqtt, tasmota, shelly, homie or
    sparkplug_b (see docs/devices.md)."""
    value: str | None = None
    """Where the value is: a field path (``data.temp``, ``temps[0]``) or a metric name."""
    timestamp: str | None = None
    """Field path of the event time (epoch s, ms or ISO 8601); absent = arrival time."""
    unit: str | None = None
    """Unit, for display."""
    window: WindowConfig = WindowConfig()
    """Event-time window."""
    watermark: WatermarkConfig = WatermarkConfig()
    """Watermark strategy."""
    late: LateConfig = LateConfig()
    """Late-data strategy."""
    aggregates: list[AggregateName] = Field(default_factory=list)
    """Aggregates beyond count, sum, mean, min and max."""
    detectors: list[DetectorConfig] = Field(default_factory=list)
    """Anomaly detectors (see docs/detection.md)."""

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, value: str) -> str:
        if not _SAFE_ID.match(value):
            raise ValueError(
                "use 1-64 letters, digits, '_', '.', ':' or '-' (it is part of topics and keys)"
            )
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in FORMATS:
            raise ValueError(f"unknown format {value!r}; expected one of {', '.join(FORMATS)}")
        return value

    @field_validator("topic")
    @classmethod
    def _topic_is_a_filter(cls, value: str) -> str:
        if not value or "\x00" in value:
            raise ValueError("topic must be a non-empty MQTT topic filter")
        levels = value.split("/")
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != len(levels) - 1):
                raise ValueError("'#' may only be a whole last level of the topic filter")
            if "+" in level and level != "+":
                raise ValueError("'+' must be a whole topic level, e.g. site/+/temperature")
        return value

    @model_validator(mode="after")
    def _device_template_fits_topic(self) -> Self:
        levels = self.topic.split("/")
        indices = [int(i) for i in _TEMPLATE_FIELD.findall(self.device)]
        if not indices and not _SAFE_ID.match(self.device):
            raise ValueError(f"device {self.device!r} is neither a template like '{{1}}' nor an id")
        if "#" not in levels:
            for index in indices:
                if index >= len(levels):
                    raise ValueError(
                        f"device template uses level {{{index}}} but topic {self.topic!r} has "
                        f"only {len(levels)} levels (0-based)"
                    )
        names = [d.name or d.type for d in self.detectors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"detector names must be unique per sensor: {', '.join(duplicates)}")
        return self


class GatewayConfig(BaseSettings):
    """The whole configuration (see configs/gateway.example.toml)."""

    model_config = SettingsConfigDict(
        env_prefix="EDGE_GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
        populate_by_name=True,
    )

    gateway_id: str
    """This gateway's id: part of topics, client ids and Redis keys."""
    mqtt: MqttConfig = MqttConfig()
    """The local broker."""
    state: StateConfig = StateConfig()
    """Local state."""
    redis: RedisConfig | None = None
    """Central Redis; absent = no central sync."""
    sync: SyncConfig = SyncConfig()
    """Store-and-forward settings."""
    forward: ForwardConfig = ForwardConfig()
    """Alert forwarding besides Redis."""
    limits: LimitsConfig = LimitsConfig()
    """Input limits."""
    actors: ActorsConfig = ActorsConfig()
    """Device actors."""
    status: StatusConfig = StatusConfig()
    """Health and live state."""
    metrics: MetricsConfig = MetricsConfig()
    """Prometheus metrics."""
    logging: LoggingConfig = LoggingConfig()
    """Logging."""
    sensors: list[SensorConfig] = Field(min_length=1)
    """The sensors to subscribe to."""

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id_is_safe(cls, value: str) -> str:
        if not _SAFE_ID.match(value):
            raise ValueError(
                "use 1-64 letters, digits, '_', '.', ':' or '-' (it is part of topics and keys)"
            )
        return value

    @model_validator(mode="after")
    def _unique_sensor_names(self) -> Self:
        names = [s.name for s in self.sensors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"sensor names must be unique: {', '.join(duplicates)}")
        if self.state.backend == "redis" and self.redis is None:
            raise ValueError("state.backend = 'redis' needs a [redis] section")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init arguments; the environment overrides them.
        return env_settings, init_settings

    @property
    def prefix(self) -> str:
        """Topic prefix of everything the gateway publishes."""
        return self.mqtt.prefix or f"edge-gateway/{self.gateway_id}"

    @property
    def client_id(self) -> str:
        """Stable MQTT client id, so the broker keeps our session across restarts."""
        return self.mqtt.client_id or f"edge-gateway-{self.gateway_id}"[:64]

    def sensor(self, name: str) -> SensorConfig:
        for sensor in self.sensors:
            if sensor.name == name:
                return sensor
        known = ", ".join(s.name for s in self.sensors)
        raise KeyError(f"no sensor named {name!r} in the config (known: {known})")


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` has one line per bad key."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{self.path}: " + "; ".join(problems))


def load_config(path: Path | str) -> GatewayConfig:
    """Read, validate and return the configuration at ``path``.

    Raises:
        ConfigError: the file is missing or unreadable, not TOML, or has invalid keys; each
            problem is one line naming the key and what was expected.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (give another one with -c FILE)"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot be read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, ["is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"is not valid TOML: {exc}"]) from None
    return config_from_dict(data, source=path)


def config_from_dict(data: dict[str, Any], source: Path | str = "<config>") -> GatewayConfig:
    """Validate an already-parsed configuration (environment overrides apply)."""
    try:
        return GatewayConfig(**data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(error) for error in exc.errors()]) from None


def _describe(error: Any) -> str:
    location = _location(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{location}: unknown key"
    if kind == "missing":
        return f"{location}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    given = error.get("input")
    if kind not in ("value_error", "assertion_error") and _is_scalar(given):
        message = f"{message} (got {given!r})"
    return f"{location}: {message}" if location else message


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool) and len(repr(value)) < 80


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in str(part) or str(part) in {"function-after", "tagged-union"}:
            continue  # pydantic's internal discriminator / validator labels
        else:
            out += f".{part}" if out else str(part)
    return out


def secret_file_warnings(path: Path | str, config: GatewayConfig) -> list[str]:
    """Warn when a file holding a secret can be read by other users."""
    holders: list[tuple[str, Path]] = []
    if _has_inline_secret(config):
        holders.append(("the config file", Path(path)))
    for section, creds in _credential_sections(config):
        if creds.password_file is not None:
            holders.append((f"{section}.password_file", Path(creds.password_file)))
    warnings = []
    for what, file in holders:
        try:
            mode = file.stat().st_mode
        except OSError:
            continue
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(
                f"{what} {str(file)!r} holds a secret and is readable by others "
                f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {file}"
            )
    return warnings


def _credential_sections(config: GatewayConfig) -> list[tuple[str, _Credentials]]:
    sections: list[tuple[str, _Credentials]] = [("mqtt", config.mqtt)]
    if config.redis is not None:
        sections.append(("redis", config.redis))
    if config.forward.mqtt is not None:
        sections.append(("forward.mqtt", config.forward.mqtt))
    return sections


def _has_inline_secret(config: GatewayConfig) -> bool:
    env_keys = {k for k in os.environ if k.startswith("EDGE_GATEWAY_")}
    for section, creds in _credential_sections(config):
        env_name = f"EDGE_GATEWAY_{section.upper().replace('.', '__')}__PASSWORD"
        if creds.password is not None and creds.password_file is None and env_name not in env_keys:
            return True
    webhook = config.forward.webhook
    return webhook is not None and bool(webhook.headers)
