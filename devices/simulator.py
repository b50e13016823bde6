"""Simulated sensors: realistic signals, injectable anomalies, out-of-order and late delivery.

Two halves, kept apart so that tests and benchmarks use the signal without a broker:

- :func:`iter_messages` — pure and deterministic for a given :class:`SimConfig` (seed
  included) and start time: yields :class:`SimMessage` in *delivery* order, each with the time
  it is due (``send_ms``), its topic and payload in the chosen profile's shape, and what it
  carries (device, value, event time, the anomaly it shows, if any).
- :func:`run` — ``edge-gateway simulate``: publishes those messages with paho-mqtt at their due
  times until ``--duration`` is over or Ctrl-C / SIGTERM.

The signal of device ``i`` at event time ``t`` (epoch ms)::

    value = 21.0 + offset_i + 3.0 * sin(2 pi t / 1 day + phase_i) + walk_i(t) + noise

with a per-device ``offset_i`` in [-1.5, 1.5] °C, a daily cycle, a slow mean-reverting random
walk (±0.3 °C) and Gaussian noise (sigma 0.1); values are rounded to 2 decimals.

Anomalies (``--anomaly``) hit the first ``--anomaly-devices`` devices: at each of their samples
an episode starts with probability ``--anomaly-rate``:

- ``spike``: one sample 8 to 15 °C above or below the signal;
- ``drift``: a ramp over 60 s of samples (at least 10) adding up to +10 °C, then back to normal;
- ``stuck``: the value at the episode start repeated exactly for 60 s of samples;
- ``dropout``: no message at all for 60 s of samples.

Delivery: a fraction ``--out-of-order`` of messages is held back 1 to 3 sample periods (so a
later reading of the same device overtakes it); a fraction ``--late`` is held back
``--late-delay`` seconds (default 30 s, beyond a typical watermark delay plus lateness).
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from devices._publish import Publisher, PublishError, add_mqtt_arguments, say, stop_on_signals
from devices.payloads import PROFILE_EXAMPLES, make_encoder
from devices.profiles import FORMATS

__all__ = [
    "ANOMALIES",
    "SimConfig",
    "SimMessage",
    "add_arguments",
    "device_names",
    "iter_messages",
    "run",
]

ANOMALIES = ("spike", "drift", "stuck", "dropout")
_DAY_MS = 86_400_000
_EPISODE_S = 60.0
_MIN_EPISODE = 10


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate. Every field has the CLI's default.

    Attributes:
        devices: number of devices, named ``dev-001`` .. ``dev-NNN``.
        rate: readings per second per device.
        duration: seconds of event time to generate; 0 = without end.
        topic: topic template with ``{device}``; ``None`` = the format's default
            (``site/{device}/temperature`` for ``json``).
        format: payload shape, one of :data:`~devices.profiles.FORMATS`.
        anomaly: one of :data:`ANOMALIES`, or ``None``.
        anomaly_rate: probability per sample that an anomaly episode starts.
        anomaly_devices: how many devices (the first ones) get anomalies.
        out_of_order: fraction of messages delivered 1 to 3 sample periods late.
        late: fraction of messages delivered ``late_delay`` seconds late.
        late_delay: seconds a late message is held back.
        seed: random seed; the same seed and start time give the same messages.
    """

    devices: int = 3
    rate: float = 1.0
    duration: float = 0.0
    topic: str | None = None
    format: str = "json"
    anomaly: str | None = None
    anomaly_rate: float = 0.01
    anomaly_devices: int = 1
    out_of_order: float = 0.0
    late: float = 0.0
    late_delay: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.devices < 1:
            problems.append(f"devices: expected at least 1, got {self.devices}")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            problems.append(f"rate: expected a positive number of Hz, got {self.rate}")
        if not (self.duration >= 0 and math.isfinite(self.duration)):
            problems.append(f"duration: expected seconds >= 0, got {self.duration}")
        if self.format not in FORMATS:
            problems.append(f"format: expected one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.anomaly is not None and self.anomaly not in ANOMALIES:
            problems.append(
                f"anomaly: expected one of {', '.join(ANOMALIES)}, got {self.anomaly!r}"
            )
        for name in ("anomaly_rate", "out_of_order", "late"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name}: expected a fraction in [0, 1], got {value}")
        if self.anomaly_devices < 0:
            problems.append(f"anomaly_devices: expected >= 0, got {self.anomaly_devices}")
        if not (self.late_delay >= 0 and math.isfinite(self.late_delay)):
            problems.append(f"late_delay: expected seconds >= 0, got {self.late_delay}")
        if self.topic is not None and "{device}" not in self.topic:
            problems.append(f"topic: expected a template containing {{device}}, got {self.topic!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def topic_template(self) -> str:
        """The topic template in use (the format's default when ``topic`` is ``None``)."""
        return self.topic if self.topic is not None else PROFILE_EXAMPLES[self.format].topic


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message, due for publishing at ``send_ms``.

    ``device``/``value``/``event_ms`` describe the reading it carries (for a Sparkplug birth,
    the reading in the ``DBIRTH``; ``value`` is ``nan`` for an ``NBIRTH``); ``anomaly`` names
    the anomaly this reading shows, if any; ``delay_ms`` is how long delivery was held back.
    """

    send_ms: int
    topic: str
    payload: bytes
    device: str
    value: float
    event_ms: int
    anomaly: str | None = None
    delay_ms: int = 0


def device_names(count: int) -> list[str]:
    """``dev-001``, ``dev-002``, ... (wider numbers past 999)."""
    width = max(3, len(str(count)))
    return [f"dev-{number:0{width}d}" for number in range(1, count + 1)]


@dataclass(slots=True)
class _Device:
    name: str
    offset: float
    phase: float
    anomalous: bool
    walk: float = 0.0
    episode: str | None = None
    episode_left: int = 0
    episode_length: int = 0
    stuck_value: float = 0.0
    last_value: float = 0.0
    extra: list[float] = field(default_factory=list)


def iter_messages(config: SimConfig, start_ms: int) -> Iterator[SimMessage]:
    """The messages of ``config`` in delivery order, event times starting at ``start_ms``.

    Deterministic: the same ``config`` (seed included) and ``start_ms`` give the same sequence.
    Endless when ``config.duration`` is 0.
    """
    rng = random.Random(config.seed)
    encoder = make_encoder(config.format)
    decimals = PROFILE_EXAMPLES[config.format].decimals
    template = config.topic_template
    period_ms = 1000.0 / config.rate
    names = device_names(config.devices)
    devices = [
        _Device(
            name=name,
            offset=rng.uniform(-1.5, 1.5),
            phase=rng.uniform(0.0, 2 * math.pi),
            anomalous=config.anomaly is not None and index < config.anomaly_devices,
        )
        for index, name in enumerate(names)
    ]
    episode = max(_MIN_EPISODE, round(_EPISODE_S * config.rate))
    ticks = math.ceil(config.duration * config.rate) if config.duration > 0 else None
    pending: list[tuple[int, int, SimMessage]] = []
    counter = 0
    tick = 0
    while ticks is None or tick < ticks:
        for index, device in enumerate(devices):
            event_ms = start_ms + round(tick * period_ms + index * period_ms / len(devices))
            while pending and pending[0][0] <= event_ms:
                yield heapq.heappop(pending)[2]
            value, anomaly = _sample(device, event_ms, rng, config, episode)
            if value is None:
                continue  # dropout
            value = round(value, decimals)
            delay = 0
            draw = rng.random()
            if draw < config.late:
                delay = round(config.late_delay * 1000)
            elif draw < config.late + config.out_of_order:
                delay = round(period_ms * rng.uniform(1.0, 3.0)) + 1
            topic = template.replace("{device}", device.name)
            for out_topic, payload in encoder.encode(topic, device.name, value, event_ms):
                message = SimMessage(
                    send_ms=event_ms + delay,
                    topic=out_topic,
                    payload=payload,
                    device=device.name,
                    value=value,
                    event_ms=event_ms,
                    anomaly=anomaly,
                    delay_ms=delay,
                )
                if delay == 0:  # everything pending is due later than this
                    yield message
                else:
                    heapq.heappush(pending, (message.send_ms, counter, message))
                    counter += 1
        tick += 1
    while pending:
        yield heapq.heappop(pending)[2]


def _sample(
    device: _Device, event_ms: int, rng: random.Random, config: SimConfig, episode: int
) -> tuple[float | None, str | None]:
    device.walk = 0.98 * device.walk + rng.gauss(0.0, 0.03)
    device.walk = max(-0.3, min(0.3, device.walk))
    daily = 3.0 * math.sin(2 * math.pi * (event_ms % _DAY_MS) / _DAY_MS + device.phase)
    normal = 21.0 + device.offset + daily + device.walk + rng.gauss(0.0, 0.1)
    start = rng.random()  # drawn for every device so the others' signals do not depend on it
    if device.anomalous and device.episode_left == 0 and start < config.anomaly_rate:
        device.episode = config.anomaly
        device.episode_length = 1 if config.anomaly == "spike" else episode
        device.episode_left = device.episode_length
        device.stuck_value = device.last_value
    if device.episode_left == 0:
        value = round(normal, 2)
        device.last_value = value
        return value, None
    kind = device.episode
    step = device.episode_length - device.episode_left + 1
    device.episode_left -= 1
    if kind == "dropout":
        return None, kind
    if kind == "stuck":
        return device.stuck_value, kind
    if kind == "spike":
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return round(normal + sign * rng.uniform(8.0, 15.0), 2), kind
    return round(normal + 10.0 * step / device.episode_length, 2), kind  # drift


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``edge-gateway simulate``'s options to ``parser``."""
    add_mqtt_arguments(parser)
    parser.add_argument("--devices", type=int, default=3, help="number of devices (default 3)")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="readings per second per device (default 1)"
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="seconds to run; 0 = until Ctrl-C (default)"
    )
    parser.add_argument(
        "--topic",
        default=None,
        help="topic template with {device} (default: the format's, e.g. site/{device}/temperature)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="json", help="payload format (default json)"
    )
    parser.add_argument("--anomaly", choices=ANOMALIES, default=None, help="anomaly to inject")
    parser.add_argument(
        "--anomaly-rate",
        type=float,
        default=0.01,
        help="probability per sample that an anomaly starts (default 0.01)",
    )
    parser.add_argument(
        "--anomaly-devices",
        type=int,
        default=1,
        help="how many devices (the first ones) get anomalies (default 1)",
    )
    parser.add_argument(
        "--out-of-order",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="fraction of messages delayed 1-3 sample periods (default 0)",
    )
    parser.add_argument(
        "--late",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="fraction of messages delayed by --late-delay (default 0)",
    )
    parser.add_argument(
        "--late-delay", type=float, default=30.0, help="seconds a late message is held back"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")


def run(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    """``edge-gateway simulate``: publish simulated readings until done or stopped.

    Returns 0 on success, 1 when the broker cannot be used, 2 for bad options. Ctrl-C and
    SIGTERM stop it cleanly; a caller running it in a thread passes ``stop`` and sets it.
    """
    try:
        config = SimConfig(
            devices=args.devices,
            rate=args.rate,
            duration=args.duration,
            topic=args.topic,
            format=args.format,
            anomaly=args.anomaly,
            anomaly_rate=args.anomaly_rate,
            anomaly_devices=args.anomaly_devices,
            out_of_order=args.out_of_order,
            late=args.late,
            late_delay=args.late_delay,
            seed=args.seed if args.seed is not None else random.SystemRandom().randrange(2**32),
        )
        if config.format == "sparkplug_b":
            make_encoder("sparkplug_b").encode(config.topic_template, "x", 0.0, 0)
    except ValueError as exc:
        say(f"simulate: {exc}", error=True)
        return 2
    start_ms = time.time_ns() // 1_000_000
    messages = iter_messages(config, start_ms)
    try:
        with Publisher.from_args(args, client_name="simulate") as publisher:
            if not args.quiet:
                say(
                    f"simulate: {config.devices} devices at {config.rate:g} Hz, format "
                    f"{config.format}, topic {config.topic_template}, seed {config.seed}"
                    + (f", anomaly {config.anomaly}" if config.anomaly else "")
                )
            with stop_on_signals(stop) as stop:
                sent = publisher.publish_due(
                    ((m.send_ms, m.topic, m.payload) for m in messages),
                    start_ms=start_ms,
                    speed=1.0,
                    stop=stop,
                    qos=args.qos,
                    progress=None if args.quiet else "simulate",
                )
    except PublishError as exc:
        say(f"simulate: {exc}", error=True)
        return 1
    say(f"simulate: published {sent} messages")
    return 0
