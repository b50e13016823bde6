"""From MQTT messages to accepted readings: topic routing, decoding and input limits.

:class:`Intake` is pure (time is passed in): for each message it finds the sensors whose
topic filter matches, takes the device id from the topic, decodes the payload and checks
the reading against ``[limits]``. Everything refused is a :class:`Rejection` with a one-line
reason and a reason code, counted per reason and per device; nothing is dropped silently.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from devices.profiles import Decoder, build_decoder
from gateway.config import GatewayConfig, SensorConfig
from gateway.durations import format_duration
from gateway.ingest.limits import DecodeLimits
from gateway.ingest.reading import DecodeError, Reading

_TEMPLATE_FIELD = re.compile(r"\{(\d+)\}")
# Device ids become MQTT topic levels, Redis key parts and table cells: no wildcards, no
# separators, no hash-tag braces, no control characters.
_BAD_DEVICE_CHARS = re.compile(r"[/+#{}\x00-\x1f\x7f]")
MAX_DEVICE_ID_LENGTH = 128
_ROUTE_CACHE_LIMIT = 50_000
_OTHER_DEVICES = "(other)"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message (or one reading of it) that was refused, and why."""

    topic: str
    device: str | None
    code: str
    reason: str


@dataclass(slots=True)
class _Route:
    sensor: SensorConfig
    levels: tuple[str, ...]
    device_levels: tuple[int, ...]
    decoder: Decoder


@dataclass(slots=True)
class _TokenBucket:
    tokens: float
    stamp: int


@dataclass
class RejectCounters:
    """Refusals by reason, and by device and reason (bounded: ``max_devices`` entries)."""

    max_devices: int
    by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_device: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, rejection: Rejection) -> None:
        self.by_reason[rejection.code] += 1
        device = rejection.device or _OTHER_DEVICES
        per_device = self.by_device.get(device)
        if per_device is None:
            if len(self.by_device) >= self.max_devices:
                device = _OTHER_DEVICES
            per_device = self.by_device.setdefault(device, defaultdict(int))
        per_device[rejection.code] += 1

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


class Intake:
    """Routes, decodes and checks messages for every configured sensor."""

    def __init__(
        self,
        config: GatewayConfig,
        decoder_factory: Callable[[SensorConfig, DecodeLimits], Decoder] | None = None,
        *,
        live: bool = True,
    ) -> None:
        """Args:
        config: the gateway configuration.
        decoder_factory: builds a sensor's decoder (default: the device profiles).
        live: apply the limits on event-time age and clock skew (off for offline replay).
        """
        self.limits = config.limits
        self.live = live
        # The limits every reading is checked against, as plain attributes (read per reading).
        self._max_skew = config.limits.max_clock_skew
        self._max_age = config.limits.max_age
        self._rate = config.limits.max_rate_per_device
        self._burst = max(self._rate, 10.0)
        decode_limits = DecodeLimits(
            max_payload_bytes=config.limits.max_payload_bytes,
            max_json_depth=config.limits.max_json_depth,
        )
        factory = decoder_factory or _profile_decoder
        self._routes = [
            _Route(
                sensor=sensor,
                levels=tuple(sensor.topic.split("/")),
                device_levels=tuple(int(i) for i in _TEMPLATE_FIELD.findall(sensor.device)),
                decoder=factory(sensor, decode_limits),
            )
            for sensor in config.sensors
        ]
        self._cache: dict[str, tuple[tuple[_Route, str | None], ...]] = {}
        self._buckets: dict[str, _TokenBucket] = {}
        self.rejects = RejectCounters(max_devices=config.limits.max_devices)
        self.accepted = 0

    @property
    def subscriptions(self) -> list[str]:
        return sorted({route.sensor.topic for route in self._routes})

    def accept(
        self, topic: str, payload: bytes, now: int
    ) -> tuple[list[Reading], list[Rejection]]:
        """Decode one message into readings stamped and checked against the limits."""
        readings: list[Reading] = []
        rejections: list[Rejection] = []
        routes = self._cache.get(topic)
        if routes is None:
            routes = self._route(topic)
        if not routes:
            rejections.append(
                Rejection(topic, None, "no_sensor", "topic matches no configured sensor")
            )
        elif len(payload) > self.limits.max_payload_bytes:
            # Checked once here so a huge payload costs nothing per matching sensor.
            rejections.append(
                Rejection(
                    topic, routes[0][1], "too_large",
                    f"payload is {len(payload)} bytes, over max_payload_bytes "
                    f"{self.limits.max_payload_bytes}",
                )
            )
            routes = ()
        for route, device in routes:
            if device is None:
                rejections.append(
                    Rejection(topic, None, "bad_device", _device_problem(route, topic))
                )
                continue
            try:
                decoded = route.decoder(topic, payload, device, route.sensor.name)
            except DecodeError as exc:
                rejections.append(Rejection(topic, device, "decode", exc.reason))
                continue
            for reading in decoded:
                problem = self._check(reading, now)
                if problem is None:
                    if reading.timestamp is None:
                        reading = Reading(
                            reading.device, reading.sensor, reading.value, now, reading.historical
                        )
                    readings.append(reading)
                else:
                    code, reason = problem
                    rejections.append(Rejection(topic, device, code, reason))
        for rejection in rejections:
            self.rejects.count(rejection)
        self.accepted += len(readings)
        return readings, rejections

    def _check(self, reading: Reading, now: int) -> tuple[str, str] | None:
        if not math.isfinite(reading.value):
            return "decode", f"value {reading.value!r} is not a finite number"
        if not self.live:
            return None
        ts = reading.timestamp
        if ts is not None:
            if ts > now + self._max_skew:
                return "future", (
                    f"timestamp {ts} is {format_duration(ts - now)} in the future "
                    f"(over max_clock_skew {format_duration(self._max_skew)})"
                )
            if ts < now - self._max_age:
                return "too_old", (
                    f"timestamp {ts} is {format_duration(now - ts)} old "
                    f"(over max_age {format_duration(self._max_age)})"
                )
        if not self._take_token(reading.device, now):
            return "rate_limited", (
                f"device sends over max_rate_per_device {self._rate:g}/s"
            )
        return None

    def _take_token(self, device: str, now: int) -> bool:
        rate = self._rate
        burst = self._burst
        bucket = self._buckets.get(device)
        if bucket is None:
            if len(self._buckets) >= self.limits.max_devices * 2:
                self._buckets.clear()  # bounded: forgetting buckets only forgives, never drops
            bucket = self._buckets[device] = _TokenBucket(burst, now)
        elapsed = now - bucket.stamp
        if elapsed > 0:
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate / 1000.0)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def _route(self, topic: str) -> tuple[tuple[_Route, str | None], ...]:
        levels = topic.split("/")
        matches = tuple(
            (route, _device_id(route, levels))
            for route in self._routes
            if topic_matches(route.levels, levels)
        )
        if len(self._cache) >= _ROUTE_CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = matches
        return matches


def topic_matches(filter_levels: Sequence[str], topic_levels: Sequence[str]) -> bool:
    """MQTT filter matching (``+`` one level, ``#`` the rest; ``$`` topics need no wildcard)."""
    if topic_levels and topic_levels[0].startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for i, want in enumerate(filter_levels):
        if want == "#":
            return True
        if i >= len(topic_levels):
            return False
        if want != "+" and want != topic_levels[i]:
            return False
    return len(filter_levels) == len(topic_levels)


def _device_id(route: _Route, levels: Sequence[str]) -> str | None:
    template = route.sensor.device
    if not route.device_levels:
        return template
    try:
        device = _TEMPLATE_FIELD.sub(lambda m: levels[int(m.group(1))], template)
    except IndexError:
        return None
    if not device or len(device) > MAX_DEVICE_ID_LENGTH or _BAD_DEVICE_CHARS.search(device):
        return None
    return device


def _device_problem(route: _Route, topic: str) -> str:
    return (
        f"device id from topic levels {route.sensor.device!r} is empty, longer than "
        f"{MAX_DEVICE_ID_LENGTH} characters or contains '/', '+', '#', braces or control "
        f"characters (topic {topic[:80]!r})"
    )


def _profile_decoder(sensor: SensorConfig, limits: DecodeLimits) -> Decoder:
    return build_decoder(
        format=sensor.format, value=sensor.value, timestamp=sensor.timestamp, limits=limits
    )
