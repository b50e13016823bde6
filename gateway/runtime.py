"""The gateway process: one tree of tasks around one processing loop.

    gateway[mqtt].connection   keeps the broker connection (ingest/mqtt.py)
    gateway[pipeline]          the only code that touches actor state: decode → actors →
                               one SQLite transaction (journal + outbox) → ack → publish;
                               processing-time ticks, checkpoints and the watchdog ping
                               happen here too, so their order is the journal's order
    gateway[status]            the retained status message
    gateway[sync].redis        outbox → Redis (gateway/sync), when [redis] is configured
    gateway[forward].*         alert forwarders, when configured

Start-up: open the store, restore the newest checkpoint, replay the journal after it, connect
and subscribe, then READY. Stop (SIGTERM/SIGINT): stop taking messages, finish the batch in
hand, final checkpoint, offline status, exit 0. SIGHUP: reload the config (see
:meth:`Gateway.reload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.actors import ActorSystem, Effects
from gateway.actors.device import DetectorFactory, default_detectors
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.ingest.mqtt import Message, MqttAuthError, MqttConnection, MqttSettings, Will
from gateway.ingest.reading import Reading
from gateway.ingest.redelivery import RecentReadings
from gateway.ingest.router import Intake, Rejection
from gateway.outputs import (
    Topics,
    alert_entry,
    deadletter_payload,
    device_entry,
    dumps,
    late_payload,
    window_entry,
)
from gateway.security import CommandError, CommandGate, TlsSetupError, client_ssl_context
from gateway.service.metrics import create_metrics
from gateway.service.notify import SystemdNotifier
from gateway.state import Checkpoint, GatewayStore, JournalEntry, OutboxEntry, open_store
from gateway.sync import OutboxSignal

log = logging.getLogger(__name__)

TICK_MS = 250
_TICK_SENSOR = ""  # journal marker: a processing-time tick that changed state
_ACKS_KEY = "gateway:acks"
_GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython: 700)
_MAX_ACKS = 10_000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


_Publish = tuple[str, bytes, int]  # topic, payload, QoS


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` (another C library, or no ctypes)."""
    try:
        import ctypes

        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (ImportError, OSError, AttributeError):
        return None
    return trim


_malloc_trim = _load_malloc_trim()


async def _release_free_memory() -> None:
    """Give the free pages inside the C heap back to the system after a checkpoint.

    A checkpoint's transient buffers (the snapshots it encodes, SQLite's statement and page
    buffers) and the readings and results freed since the last one leave free memory that
    glibc keeps mapped: with 10,000 devices 15-25 MB of RSS that Python no longer uses
    (``bench/bench_memory.py``; ``malloc_trim(0)`` hands it back with ``MADV_DONTNEED``). In a
    thread, as it walks the whole heap (~10 ms there); ctypes releases the GIL meanwhile.
    """
    if _malloc_trim is not None:
        await asyncio.to_thread(_malloc_trim, 0)


def _acknowledged(alert: dict[str, Any], ack: dict[str, Any]) -> dict[str, Any]:
    return {**alert, "acknowledged": True, "acknowledged_at": ack["at"],
            "acknowledged_by": ack["by"]}


class StartupError(Exception):
    """The gateway cannot start; the message says what the operator must fix."""


@dataclass
class _Counters:
    readings_in: int = 0
    decode_errors: int = 0
    rejected: int = 0
    deadletter: int = 0
    deadletter_suppressed: int = 0
    windows_out: int = 0
    alerts_out: int = 0
    late: int = 0
    dropped_late: int = 0
    commands: int = 0
    commands_refused: int = 0
    checkpoints: int = 0
    last_checkpoint_ms: float = 0.0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


class _RateLimit:
    """A token bucket on processing time (deadletter publishing)."""

    def __init__(self, per_s: float) -> None:
        self.rate = per_s
        self.burst = max(per_s, 1.0)
        self.tokens = self.burst
        self.stamp = 0

    def take(self, now: int) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate / 1000)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Gateway:
    """One gateway process. ``await Gateway(config).run()`` until :meth:`stop`."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        config_path: Path | str | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        notifier: SystemdNotifier | None = None,
        detector_factory: DetectorFactory = default_detectors,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.clock = clock
        self.notifier = notifier or SystemdNotifier()
        self.topics = Topics(config.prefix)
        self.counters = _Counters()
        self.metrics = create_metrics(
            config.metrics.enabled, gateway_id=config.gateway_id, version=__version__
        )
        self._detector_factory = detector_factory
        self.actors = ActorSystem(config, detector_factory)
        self.intake = Intake(config)
        self.commands = CommandGate(config.prefix)
        self._inbox: list[Message] = []
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._reload_requested = False
        self._started_at = clock()
        # Devices passivated since the last checkpoint was taken: its next one drops them.
        self._removed: set[str] = set()
        self._acks: dict[str, dict[str, Any]] = {}
        self._changed_devices: set[str] = set()
        self._checked_devices: set[str] = set()
        self._deadletter_limit = _RateLimit(config.limits.deadletter_per_s)
        self._rate_window: tuple[int, int] = (self._started_at, 0)
        self._readings_per_s = 0.0
        self._store: GatewayStore | None = None
        self._mqtt: MqttConnection | None = None
        self._sync: Any = None
        self._sinks: list[Any] = []
        self._outbox_signal = OutboxSignal()
        self._recent = RecentReadings()
        self._stalled = False
        self._stalled_at_count = 0
        self._pending_summaries: list[OutboxEntry] = []
        self._checkpointing: asyncio.Task[None] | None = None
        self._outbox_status: dict[str, Any] = {}
        self.ready = asyncio.Event()

    # -- control --------------------------------------------------------------------------

    @property
    def mqtt(self) -> MqttConnection | None:
        """The broker connection while running."""
        return self._mqtt

    def stop(self) -> None:
        """Ask the gateway to stop gracefully (what SIGTERM does)."""
        self._stop.set()
        self._wakeup.set()

    def request_reload(self) -> None:
        """Ask the gateway to re-read its config file (what SIGHUP does)."""
        self._reload_requested = True
        self._wakeup.set()

    # -- the process ----------------------------------------------------------------------

    async def run(self) -> int:
        """Run until stopped; return the exit code."""
        loop = asyncio.get_running_loop()
        for sig, handler in (
            (signal.SIGTERM, self.stop),
            (signal.SIGINT, self.stop),
            (signal.SIGHUP, self.request_reload),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handler)
        try:
            return await self._run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
            self.metrics.close()

    async def _run(self) -> int:
        if self.config.metrics.enabled:
            host, port = self.metrics.start_http(self.config.metrics.host, self.config.metrics.port)
            log.info("metrics on http://%s:%d/metrics", host, port)
        async with open_store(self.config, now_ms=self.clock) as store:
            self._store = store
            await self._probe_redis()
            # Every reading allocates a few short-lived objects, and each 10,000 devices' open
            # windows hold many long-lived ones: at the default 700 allocations a young
            # collection ran ~400 times a second and promoted enough to set off a full one
            # every half second (1.2-1.9 s of 8-9 s of CPU for 400,000 readings of 10,000
            # devices, bench_e2e.py). 10,000: 0.45 s, and 43k -> 58k readings/s (memory
            # backend), 75k -> 88k (sqlite). Set before the journal replay, which allocates
            # the same way.
            gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
            await self._restore(store)
            # Modules, config and the restored state live as long as the process: out of the
            # cyclic collector's way, whose full collections otherwise walk them all (a 30-90
            # ms stall of the pipeline each, several a minute at 18k readings/s).
            gc.freeze()
            settings = self._mqtt_settings()
            async with MqttConnection(settings, on_messages=self._on_messages) as mqtt:
                self._mqtt = mqtt
                try:
                    await self._wait_for_broker(mqtt)
                except MqttAuthError as exc:
                    log.error("MQTT broker refused the gateway: %s", exc)
                    return 2
                self._publish_status("online")
                async with asyncio.TaskGroup() as tasks:
                    await self._start_sync(tasks, store)
                    pipeline = tasks.create_task(self._pipeline(store), name="gateway[pipeline]")
                    status = tasks.create_task(self._status_loop(), name="gateway[status]")
                    self.ready.set()
                    self.notifier.ready(self._status_line())
                    log.info(
                        "gateway %s ready: %d sensors, %d devices restored, broker %s:%d",
                        self.config.gateway_id, len(self.config.sensors), len(self.actors),
                        self.config.mqtt.host, self.config.mqtt.port,
                    )
                    await pipeline
                    status.cancel()
                    await self._stop_sync()
                self.notifier.stopping("stopping: final checkpoint")
                await self._checkpoint(store)
                await self._publish_status_confirmed("offline")
        log.info("gateway %s stopped", self.config.gateway_id)
        return 0

    async def _wait_for_broker(self, mqtt: MqttConnection) -> None:
        """Wait for the first connection, telling systemd we are still starting (not hung)."""
        while True:
            try:
                await mqtt.wait_connected(within=30)
            except TimeoutError:
                reason = mqtt.stats.last_error or "no answer"
                self.notifier.extend_timeout(60)
                self.notifier.status(f"waiting for the MQTT broker: {reason}")
            else:
                return

    def _mqtt_settings(self) -> MqttSettings:
        cfg = self.config
        tls = None
        if cfg.mqtt.tls is not None:
            try:
                tls = client_ssl_context(cfg.mqtt.tls)
            except TlsSetupError as exc:
                raise StartupError(f"mqtt.tls: {exc}") from None
        offline = dumps({"gateway_id": cfg.gateway_id, "state": "offline"})
        return MqttSettings(
            host=cfg.mqtt.host,
            port=cfg.mqtt.port,
            client_id=cfg.client_id,
            subscriptions=self._subscriptions(),
            username=cfg.mqtt.username,
            password=cfg.mqtt.password_value(),
            tls=tls,
            protocol=cfg.mqtt.protocol,
            keepalive_s=max(1, cfg.mqtt.keepalive // 1000),
            session_expiry_s=cfg.mqtt.session_expiry // 1000,
            manual_ack=True,
            will=Will(self.topics.status, offline, qos=1, retain=True),
            reconnect_max_s=cfg.mqtt.reconnect_max / 1000,
            name="mqtt",
        )

    def _subscriptions(self) -> list[tuple[str, int]]:
        qos: int = self.config.mqtt.qos
        return [(topic, qos) for topic in self.intake.subscriptions] + [(self.topics.commands, 1)]

    # -- restore --------------------------------------------------------------------------

    async def _restore(self, store: GatewayStore) -> None:
        checkpoint = await self._restore_checkpoint(store)
        after = checkpoint.journal_seq if checkpoint is not None else 0
        replayed = 0
        effects = Effects()
        outbox: list[OutboxEntry] = []
        # Readings journalled by one batch share its arrival time: replay them as one
        # delivery, as they were handled live (one deliver() call per reading made a restart
        # with 10,000 devices' journal 3 s; see bench/bench_startup.py).
        batch: list[Reading] = []
        batch_at = 0
        async for entry in store.replay_journal(after):
            if batch and (entry.sensor == _TICK_SENSOR or entry.arrival != batch_at):
                self.actors.deliver(batch, batch_at, effects)
                await self._rebuild_failed(store)
                batch = []
                if len(effects.windows) + len(effects.alerts) > 1000:
                    outbox += await self._replayed(effects, batch_at)
                    effects = Effects()
            if entry.sensor == _TICK_SENSOR:
                self.actors.tick(entry.arrival, effects)
                await self._rebuild_failed(store)
            else:
                self._recent.add(entry.device, entry.sensor, entry.value, entry.timestamp)
                if entry.device not in self.actors:
                    await self._ensure_actor(store, entry.device, entry.arrival)
                batch.append(Reading(
                    entry.device, entry.sensor, entry.value, entry.timestamp, entry.historical
                ))
                batch_at = entry.arrival
            replayed += 1
        if batch:
            self.actors.deliver(batch, batch_at, effects)
            await self._rebuild_failed(store)
        outbox += await self._replayed(effects, self.clock())
        if outbox:
            # Outputs of replayed readings were committed with them; duplicates are ignored.
            await store.commit_batch([], outbox)
        if checkpoint is not None or replayed:
            log.info(
                "restored %d devices from checkpoint %s and replayed %d journal entries",
                len(self.actors), checkpoint.id if checkpoint else "-", replayed,
            )

    async def _restore_checkpoint(self, store: GatewayStore) -> Checkpoint | None:
        """Restore the actors from the latest checkpoint, if there is one, and return it."""
        # Loading and restoring a checkpoint allocates almost only what lives on: collections
        # during it free nothing and walk the growing state again and again (10,000 devices:
        # 2.2 -> 1.5 s to READY, bench/bench_startup.py). The journal replay after it runs with
        # the collector on: it makes short-lived garbage too.
        collecting = gc.isenabled()
        gc.disable()
        try:
            checkpoint = await store.load_checkpoint()
            if checkpoint is None:
                return None
            snapshots = dict(checkpoint.snapshots)
            acks = snapshots.pop(_ACKS_KEY, None)
            if isinstance(acks, dict):
                self._acks = acks
            self.actors.restore(snapshots)
            self._checked_devices.update(snapshots)
            return checkpoint
        finally:
            if collecting:
                gc.enable()

    async def _replayed(self, effects: Effects, now: int) -> list[OutboxEntry]:
        entries, publishes = self._render(effects, now)
        # MQTT outputs are at least once: what a crash cut off before publishing goes out now.
        self._send(publishes, bool(effects.alerts))
        return entries

    async def _ensure_actor(self, store: GatewayStore, device: str, now: int) -> None:
        """Bring back a device's state written out by passivation, once per device."""
        if device in self.actors or device in self._checked_devices:
            return
        if len(self._checked_devices) < self.config.limits.max_devices * 2:
            self._checked_devices.add(device)
        snapshot = await store.get_snapshot(device)
        if snapshot is not None or self.actors.is_passivated(device):
            self.actors.revive(device, snapshot, now)

    async def _rebuild_failed(self, store: GatewayStore) -> None:
        """Rebuild the actors that failed in the last delivery or tick from their state in the
        store (the actor system keeps no copy of it), before anything else happens to them."""
        waiting = self.actors.waiting
        if not waiting:
            return
        task = self._checkpointing
        if task is not None and any(where == "checkpoint" for _, where in waiting):
            # Its snapshots are the baselines already: read them once they are stored.
            await asyncio.wait({task})
            self._checkpoint_written()  # a failed write stops the pipeline here
        for device, where in waiting:
            if where == "parked":
                snapshot = await store.get_snapshot(device)
            else:
                snapshot = await store.load_checkpointed(device)
            self.actors.rebuild(device, snapshot)

    # -- the pipeline -----------------------------------------------------------------------

    def _on_messages(self, batch: list[Message]) -> None:
        self._inbox.extend(batch)
        self._wakeup.set()

    async def _pipeline(self, store: GatewayStore) -> None:
        cfg = self.config
        next_tick = self.clock() + TICK_MS
        next_checkpoint = self.clock() + cfg.state.checkpoint_interval
        next_views = self.clock() + cfg.status.device_interval
        next_summaries = self.clock() + cfg.sync.heartbeat_interval
        watchdog_s = self.notifier.watchdog_interval()
        next_watchdog = time.monotonic()
        while True:
            now = self.clock()
            if not self._inbox and not self._stop.is_set():
                timeout = max(0, min(next_tick, next_checkpoint) - now) / 1000
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
                now = self.clock()
            self._wakeup.clear()
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
            tick = now >= next_tick
            await self._step(store, now, tick)
            if tick:
                next_tick = now + TICK_MS
                self._check_stall()
                if now >= next_views:
                    self._publish_views(now, to_outbox=now >= next_summaries)
                    next_views = now + cfg.status.device_interval
                    if now >= next_summaries:
                        next_summaries = now + cfg.sync.heartbeat_interval
            if tick:
                self._checkpoint_written()  # a failed write stops the pipeline
            if now >= next_checkpoint:
                if self._checkpoint_written():
                    # Written while the pipeline goes on: only taking the snapshots stops it.
                    self._checkpointing = asyncio.create_task(
                        self._begin_checkpoint(store), name="gateway[checkpoint]"
                    )
                    await self._passivate(store, now)
                    next_checkpoint = self.clock() + cfg.state.checkpoint_interval
                else:
                    next_checkpoint = now + TICK_MS  # the previous one is still being written
            if watchdog_s is not None and time.monotonic() >= next_watchdog:
                # From the loop that processes readings: a stuck loop gets us restarted.
                self.notifier.watchdog()
                next_watchdog = time.monotonic() + watchdog_s
            if self._stop.is_set() and not self._inbox:
                if self._checkpointing is not None:
                    await self._checkpointing
                    self._checkpointing = None
                return
            # Let the MQTT reader and other tasks run between batches.
            await asyncio.sleep(0)

    async def _step(self, store: GatewayStore, now: int, tick: bool) -> None:
        messages, self._inbox = self._inbox, []
        journal: list[JournalEntry] = []
        effects = Effects()
        accepted: list[Reading] = []
        redeliverable: list[Reading] = []  # QoS 0 messages are never redelivered
        commands: list[Message] = []
        for message in messages:
            if message.topic == self.topics.commands:
                commands.append(message)
                continue
            readings, rejections = self.intake.accept(message.topic, message.payload, now)
            if rejections:
                self._rejected(rejections, message.payload, now)
            if message.dup and self._recent.already_journalled(readings):
                continue  # a redelivery whose first copy is in the journal: ack it, skip it
            accepted.extend(readings)
            if message.qos:
                redeliverable.extend(readings)
        if accepted:
            self._recent.add_all(redeliverable)
            for device in {r.device for r in accepted if r.device not in self.actors}:
                await self._ensure_actor(store, device, now)
            self.actors.deliver(accepted, now, effects)
            await self._rebuild_failed(store)
            journal = [
                JournalEntry(0, r.device, r.sensor, r.value, r.timestamp or now, now, r.historical)
                for r in accepted
            ]
            self.counters.readings_in += len(accepted)
            self.metrics.reading_in(len(accepted))
        if tick:
            before = len(effects.windows) + len(effects.alerts)
            self.actors.tick(now, effects)
            await self._rebuild_failed(store)
            if len(effects.windows) + len(effects.alerts) > before:
                journal.append(JournalEntry(0, "", _TICK_SENSOR, 0.0, now, now))
        outbox, publishes = self._render(effects, now)
        if journal or outbox:
            await store.commit_batch(journal, outbox)
            if outbox:
                self._outbox_signal.notify()
        # Durable now: acknowledge to the broker, then tell the world.
        if self._mqtt is not None:
            self._mqtt.ack(messages)
        self._send(publishes, bool(effects.alerts))
        for message in commands:
            self._command(message, now)

    def _check_stall(self) -> None:
        """No message for ``stall_timeout`` while devices are expected: report, resubscribe."""
        mqtt = self._mqtt
        if mqtt is None or not mqtt.connected or not len(self.actors):
            return
        silent_s = time.monotonic() - mqtt.stats.last_message
        if silent_s * 1000 < self.config.mqtt.stall_timeout:
            if self._stalled and mqtt.stats.messages > self._stalled_at_count:
                self._stalled = False
                log.info("MQTT intake flowing again")
            return
        if not self._stalled:
            self._stalled = True
            log.warning(
                "MQTT intake stalled: no message for %.0fs from %d known devices; renewing "
                "subscriptions", silent_s, len(self.actors),
            )
        self._stalled_at_count = mqtt.stats.messages
        mqtt.resubscribe()

    def _rejected(self, rejections: list[Rejection], payload: bytes, now: int) -> None:
        for rejection in rejections:
            self.counters.rejected += 1
            if rejection.code == "decode":
                self.counters.decode_errors += 1
            self.metrics.decode_error(rejection.code)
            by_reason = self.counters.rejected_by_reason
            by_reason[rejection.code] = by_reason.get(rejection.code, 0) + 1
            if rejection.code == "no_sensor":
                continue  # a neighbour's topic under our wildcard filter is no dead letter
            if self._deadletter_limit.take(now) and self._mqtt is not None:
                self.counters.deadletter += 1
                self._mqtt.publish(
                    self.topics.deadletter, deadletter_payload(rejection, payload, now), qos=0
                )
            else:
                self.counters.deadletter_suppressed += 1

    def _render(self, effects: Effects, now: int) -> tuple[list[OutboxEntry], list[_Publish]]:
        """Encode each output once: the outbox rows (when a sink drains them) and the MQTT
        messages, which are sent only after the rows are committed."""
        self._changed_devices |= effects.changed_devices
        c = self.counters
        c.late += len(effects.late) + effects.dropped_late
        c.dropped_late += effects.dropped_late
        if effects.dropped_late:
            self.metrics.late(effects.dropped_late)
            self.metrics.dropped("late", effects.dropped_late)
        to_outbox = self._has_sinks()  # nobody drains the outbox: do not fill the disk
        entries: list[OutboxEntry] = []
        publishes: list[_Publish] = []
        topics = self.topics
        for sensor, result in effects.windows:
            payload, entry = window_entry(sensor, result, now)
            if to_outbox:
                entries.append(entry)
            publishes.append((topics.windows(str(result.key), sensor), payload, 0))
        c.windows_out += len(effects.windows)
        if effects.windows:
            self.metrics.reading_out(len(effects.windows))
        for alert in effects.alerts:
            payload, entry = alert_entry(alert, now)
            if to_outbox:
                entries.append(entry)
            acked = self._acks.get(alert["alert_id"])
            if acked is not None:
                payload = dumps(_acknowledged(alert, acked))
            if alert["state"] == "resolved":
                self._acks.pop(alert["alert_id"], None)
            publishes.append((topics.alerts, payload, 1))
        c.alerts_out += len(effects.alerts)
        for sensor, event in effects.late:
            publishes.append((topics.late(str(event.key), sensor), late_payload(sensor, event), 0))
        return entries, publishes

    def _send(self, publishes: list[_Publish], alerts_changed: bool) -> None:
        mqtt = self._mqtt
        if mqtt is None:
            return
        for topic, payload, qos in publishes:
            mqtt.publish(topic, payload, qos=qos)
        if alerts_changed:
            self._publish_active_alerts()

    def _publish_active_alerts(self) -> None:
        if self._mqtt is None:
            return
        active = []
        for alert in self.actors.active_alerts():
            acked = self._acks.get(alert["alert_id"])
            active.append(alert if acked is None else _acknowledged(alert, acked))
        self._mqtt.publish(self.topics.alerts_active, dumps(active), qos=1, retain=True)

    def _publish_views(self, now: int, *, to_outbox: bool) -> None:
        changed, self._changed_devices = self._changed_devices, set()
        if not changed or self._mqtt is None:
            return
        views = self.actors.views(changed, now)
        for view in views:
            # Retained, so a dashboard started later sees quiet devices too.
            self._mqtt.publish(
                self.topics.device(view["device"]), dumps(view), qos=0, retain=True
            )
        if to_outbox and self.config.redis is not None:
            self._pending_summaries = [device_entry(v)[1] for v in views]

    def _command(self, message: Message, now: int) -> None:
        try:
            command = self.commands.check(message.topic, message.payload)
        except CommandError as exc:
            self.counters.commands_refused += 1
            log.warning("command refused: %s", exc)
            return
        self.counters.commands += 1
        alert_id = command.alert_id
        active = {a["alert_id"]: a for a in self.actors.active_alerts()}
        alert = active.get(alert_id)
        if alert is None:
            log.info("ack for unknown or resolved alert %s ignored", alert_id)
            return
        if len(self._acks) >= _MAX_ACKS:
            self._acks.pop(next(iter(self._acks)))
        self._acks[alert_id] = {"by": command.by, "at": now}
        log.info("alert %s acknowledged by %s", alert_id, command.by)
        if self._mqtt is not None:
            acked = _acknowledged(alert, self._acks[alert_id])
            self._mqtt.publish(self.topics.alerts, dumps(acked), qos=1)
            self._publish_active_alerts()

    # -- checkpoints and passivation -------------------------------------------------------

    async def _checkpoint(self, store: GatewayStore) -> None:
        await self._begin_checkpoint(store)

    def _begin_checkpoint(self, store: GatewayStore) -> Coroutine[Any, Any, None]:
        """Take a checkpoint's snapshots now, between batches, where they match the journal
        committed so far; return the write to the store, which need not hold up the pipeline.

        The write (the SQLite transaction and the journal prune after it: ~50 ms at 18k
        readings/s) used to be awaited by the pipeline: the readings arriving meanwhile, and
        their alerts, waited for it (bench/bench_latency.py's p99).
        """
        started = time.perf_counter()
        summaries, self._pending_summaries = self._pending_summaries, []
        # Only what changed since the last checkpoint: the store applies it to what it holds,
        # and no copy of the checkpointed state stays here (a failed write stops the pipeline,
        # so these changes are never needed again).
        changed: dict[str, Any] = dict(self.actors.snapshot_dirty())
        changed[_ACKS_KEY] = dict(self._acks)
        removed = [device for device in self._removed if device not in changed]
        self._removed = set()
        journal_seq = store.next_seq - 1

        async def write() -> None:
            if summaries:
                await store.commit_batch([], summaries)
            await store.write_checkpoint(changed, journal_seq, removed=removed)
            # Freed before the trim below, not when this task is dropped (at the next tick):
            # with every device changed, 1.8-4 KB each that would wait for the next checkpoint.
            changed.clear()
            elapsed = time.perf_counter() - started
            self.counters.checkpoints += 1
            self.counters.last_checkpoint_ms = elapsed * 1000
            self.metrics.observe_checkpoint(elapsed)
            await _release_free_memory()

        return write()

    def _checkpoint_written(self) -> bool:
        """Whether no checkpoint is being written (a failed one raises here, in the pipeline,
        as it did when the pipeline wrote it)."""
        task = self._checkpointing
        if task is None:
            return True
        if not task.done():
            return False
        self._checkpointing = None
        task.result()
        return True

    async def _passivate(self, store: GatewayStore, now: int) -> None:
        for device, snapshot in self.actors.passivate_idle(now).items():
            await store.put_snapshot(device, snapshot)
            self._removed.add(device)
            self._checked_devices.discard(device)

    # -- status ---------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        interval = self.config.status.interval / 1000
        while True:
            await asyncio.sleep(interval)
            await self._refresh_outbox_stats()
            self._publish_status("online")
            self.notifier.status(self._status_line())

    def status(self, state: str = "online") -> dict[str, Any]:
        now = self.clock()
        since, count = self._rate_window
        if now - since >= 1000:
            self._readings_per_s = (self.counters.readings_in - count) * 1000 / (now - since)
            self._rate_window = (now, self.counters.readings_in)
        c = self.counters
        sync_status = self._sync.status() if self._sync is not None else {}
        outbox = self._outbox_status
        return {
            "gateway_id": self.config.gateway_id,
            "state": state,
            "version": __version__,
            "host": socket.gethostname(),
            "started_at": self._started_at,
            "ts": now,
            "uptime_s": round((now - self._started_at) / 1000, 1),
            "readings": {
                "in": c.readings_in,
                "per_s": round(self._readings_per_s, 1),
                "decode_errors": c.decode_errors,
                "rejected": c.rejected,
                "rejected_by_reason": dict(c.rejected_by_reason),
                "late": c.late,
                "dropped": c.dropped_late + self.actors.stats.mailbox_dropped
                + self.actors.stats.parked_dropped,
                "deadletter": c.deadletter,
                "deadletter_suppressed": c.deadletter_suppressed,
                "redelivered_duplicates": self._recent.duplicates,
            },
            "outputs": {"windows": c.windows_out, "alerts": c.alerts_out},
            "devices": {
                "active": len(self.actors),
                "parked": len(self.actors.parked),
                "parked_ids": self.actors.parked,
                "refused": self.actors.stats.refused,
                "restarts": self.actors.stats.restarts,
                "passivated": self.actors.stats.passivated,
            },
            "mqtt": {
                "connected": bool(self._mqtt and self._mqtt.connected),
                "stalled": self._stalled,
                "reconnects": self._mqtt.stats.disconnects if self._mqtt else 0,
                "resubscribes": self._mqtt.stats.resubscribes if self._mqtt else 0,
            },
            "redis": {
                "configured": self.config.redis is not None,
                "connected": bool(sync_status.get("connected", False)),
                "last_error": sync_status.get("last_error"),
            },
            "outbox": outbox,
            "alerts": {"active": len(self.actors.active_alerts())},
            "checkpoint": {"count": c.checkpoints, "last_ms": round(c.last_checkpoint_ms, 1)},
            "commands": {"accepted": c.commands, "refused": c.commands_refused},
        }

    def _status_line(self) -> str:
        c = self.counters
        return (
            f"{len(self.actors)} devices, {c.readings_in} readings, {self._readings_per_s:.0f}/s, "
            f"{len(self.actors.active_alerts())} active alerts"
        )

    def _publish_status(self, state: str) -> None:
        if self._mqtt is not None:
            self._mqtt.publish(
                self.topics.status, dumps(self.status(state)), qos=1, retain=True
            )

    async def _publish_status_confirmed(self, state: str) -> None:
        if self._mqtt is None or not self._mqtt.connected:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._mqtt.publish_confirmed(
                    self.topics.status, dumps(self.status(state)), qos=1, retain=True
                )

    async def _refresh_outbox_stats(self) -> None:
        if self._store is None:
            return
        stats = await self._store.outbox_stats()
        now = self.clock()
        sync_status = self._sync.status() if self._sync is not None else {}
        self._outbox_status = {
            "rows": stats.rows,
            "bytes": stats.bytes,
            "oldest_age_s": None
            if stats.oldest_created_at is None
            else round((now - stats.oldest_created_at) / 1000, 1),
            "drain_per_s": sync_status.get("drain_per_s", 0.0),
            "dropped": stats.dropped_windows + stats.dropped_alerts,
            "dropped_alerts": stats.dropped_alerts,
        }
        self.metrics.set_outbox_backlog(stats.rows, stats.bytes)
        self.metrics.set_actors(len(self.actors))

    # -- sync -----------------------------------------------------------------------------

    async def _probe_redis(self) -> None:
        """Refused credentials or certificates stop the start with the reason; an unreachable
        Redis does not (results wait in the outbox until it is back)."""
        cfg = self.config.redis
        if cfg is None:
            return
        from gateway.state import StateAuthError, StateConfigError, StateError
        from gateway.state.redis_connect import connect_redis, ping_redis

        client = connect_redis(cfg, client_name=f"edge-gateway:{self.config.gateway_id}")
        try:
            async with asyncio.timeout(cfg.socket_timeout / 1000 + 1):
                await ping_redis(client, cfg)
        except (StateAuthError, StateConfigError) as exc:
            raise StartupError(f"redis: {exc}") from None
        except (StateError, TimeoutError) as exc:
            log.warning("Redis not reachable at start (%s); results wait in the outbox", exc)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _has_sinks(self) -> bool:
        forward = self.config.forward
        return self.config.redis is not None or forward.mqtt is not None or (
            forward.webhook is not None
        )

    async def _start_sync(self, tasks: asyncio.TaskGroup, store: GatewayStore) -> None:
        """Start a drain loop per sink, each with its own outbox cursor."""
        from gateway.sync import MqttForwarder, WebhookForwarder

        cfg = self.config
        sinks: list[Any] = []
        if cfg.redis is not None:
            from gateway.sync import RedisSync  # the Redis client only when there is a Redis

            self._sync = RedisSync(
                store, gateway_id=cfg.gateway_id, redis=cfg.redis, sync=cfg.sync,
                signal=self._outbox_signal, heartbeat=self._heartbeat, outbox_epoch=store.epoch,
                now_ms=self.clock,
            )
            sinks.append(self._sync)
        if cfg.forward.mqtt is not None:
            sinks.append(MqttForwarder(store, gateway_id=cfg.gateway_id, cfg=cfg.forward.mqtt,
                                       sync=cfg.sync, signal=self._outbox_signal,
                                       now_ms=self.clock))
        if cfg.forward.webhook is not None:
            sinks.append(WebhookForwarder(store, cfg=cfg.forward.webhook, sync=cfg.sync,
                                          signal=self._outbox_signal, now_ms=self.clock))
        for sink in sinks:
            await sink.__aenter__()
            self._sinks.append(sink)
            sink.start(tasks)

    async def _stop_sync(self) -> None:
        sinks, self._sinks = self._sinks, []
        for sink in reversed(sinks):
            await sink.__aexit__(None, None, None)

    def _heartbeat(self) -> dict[str, Any]:
        status = self.status()
        return {k: status[k] for k in ("state", "version", "host", "ts", "uptime_s", "readings",
                                       "devices", "alerts")}

    # -- reload ---------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the config file; apply sensor and detector changes, keep window state.

        An invalid new config is rejected with a log line and the old one stays.
        """
        if self.config_path is None:
            log.warning("reload requested but the gateway was not started from a file")
            return False
        self.notifier.reloading("reloading configuration")
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload rejected, keeping the running config: %s", "; ".join(exc.problems))
            self.notifier.ready("reload rejected: " + exc.problems[0])
            return False
        if new.mqtt != self.config.mqtt or new.gateway_id != self.config.gateway_id:
            log.warning("reload: [mqtt] and gateway_id changes need a restart; ignoring them")
        snapshots = self.actors.snapshot_all()
        gc.unfreeze()  # the old actor system is garbage in a cycle (actors -> system -> cells)
        self.config = new.model_copy(update={"mqtt": self.config.mqtt,
                                             "gateway_id": self.config.gateway_id})
        self.actors = ActorSystem(self.config, self._detector_factory)
        self.actors.restore(snapshots, checkpointed=False)
        self.intake = Intake(self.config)
        if self._mqtt is not None:
            self._mqtt.set_subscriptions(self._subscriptions())
        from gateway.service.logs import add_config_secrets, setup_logging

        setup_logging(self.config.logging.level, self.config.logging.json_format)
        add_config_secrets(self.config)
        log.info("configuration reloaded: %d sensors", len(self.config.sensors))
        self.notifier.ready(self._status_line())
        return True
