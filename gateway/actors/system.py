"""The actor system: a registry of device actors, their mailboxes and their supervisor.

Contract (in the spirit of Pykka's, translated to one event loop):

- **One actor per device**, created on its first reading (up to ``[limits] max_devices``;
  further devices are refused and counted). Its readings are handled one at a time, in
  arrival order; nothing else touches its state.
- **Mailbox**: bounded (``[actors] mailbox_size``). Readings wait in it only while their actor
  is backing off after a failure; when it is full the oldest reading is dropped and counted.
  :attr:`ActorSystem.pending` lets the intake apply backpressure before that happens.
- **Failure**: an exception while handling a reading is logged with the device and reading.
  The actor is rebuilt from its last checkpointed state plus the readings it handled since
  (the failing reading excluded, and counted), then resumes after a capped exponential
  backoff. More than ``max_restarts`` failures within ``restart_window`` park it: its
  readings are dropped and counted, it is listed in the status, other devices carry on.
  The last checkpointed state is not kept in memory: it is in the store (the newest
  checkpoint, or the parked snapshot of a revived actor), so a failed actor whose state came
  from there *waits* (:attr:`ActorSystem.waiting`) until the caller reads that snapshot and
  hands it to :meth:`ActorSystem.rebuild`, which it must do before the next :meth:`tick`,
  :meth:`snapshot_dirty` or output (and, for the newest checkpoint, after any checkpoint
  being written has been committed). An actor with no stored state yet (new, or more readings
  since its checkpoint than ``mailbox_size``, whose state is then kept encoded) is rebuilt at
  once.
- **Stop**: nothing is lost on stop: mailboxes are empty except for backing-off actors,
  whose readings are already in the journal and are replayed on the next start.
- **Passivation**: an actor idle for ``passivate_after`` is snapshotted, handed to the
  caller to write out, and dropped; it comes back on its next reading via :meth:`revive`.
- **Checkpoints**: :meth:`snapshot_dirty` snapshots only the actors that changed since the
  last call, already encoded (:func:`~gateway.state.encode_snapshot`), for the caller to
  write to the store as the next checkpoint's changes; from then on that checkpoint is the
  baseline a failed actor is rebuilt from. Processing time alone changes no actor unless a
  detector watches it (``missing``).

Everything here is synchronous and pure; the runtime feeds it readings and time.
"""

from __future__ import annotations

import logging
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.actors.device import DetectorFactory, DeviceActor, Effects, default_detectors
from gateway.config import GatewayConfig, SensorConfig
from gateway.ingest.reading import Reading
from gateway.state import EncodedSnapshot, encode_snapshot, load_snapshot
from gateway.stream import Aggregator as _Aggregator
from gateway.stream import (
    AllowedLateness,
    Average,
    BoundedOutOfOrder,
    Count,
    Drop,
    First,
    Last,
    LateStrategy,
    Max,
    Min,
    MonotonicAscending,
    Percentile,
    Periodic,
    RecomputeWindows,
    SessionWindow,
    SideOutput,
    SlidingWindow,
    StdDev,
    Sum,
    TumblingWindow,
    WatermarkStrategy,
    WindowOperator,
    WindowResult,
)

log = logging.getLogger(__name__)

_MAX_PARKED_LISTED = 50


@dataclass
class ActorStats:
    """Counters of the actor system, for status and metrics."""

    created: int = 0
    refused: int = 0
    restarts: int = 0
    failed_readings: int = 0
    mailbox_dropped: int = 0
    parked_dropped: int = 0
    passivated: int = 0


class _Handled:
    """The readings an actor handled since its baseline, which a rebuild replays.

    Columns of floats and ints rather than a list of :class:`Reading` objects: at 18k
    readings/s tens of thousands are alive until the next checkpoint, and as objects the
    garbage collector's full collections traversed them all (90-160 ms stalls of the pipeline,
    ``bench/bench_latency.py``), and freeing them all at once stalled the checkpoint.
    """

    __slots__ = ("historical", "sensors", "timestamps", "values")

    def __init__(self) -> None:
        self.sensors: list[str] = []
        self.values = array("d")
        self.timestamps = array("q")
        self.historical = bytearray()

    def __len__(self) -> int:
        return len(self.sensors)

    def append(self, reading: Reading) -> None:
        self.sensors.append(reading.sensor)
        self.values.append(reading.value)
        self.timestamps.append(reading.timestamp or 0)
        self.historical.append(reading.historical)

    def __iter__(self) -> Iterator[tuple[str, float, int, bool]]:
        for i, sensor in enumerate(self.sensors):
            yield sensor, self.values[i], self.timestamps[i], bool(self.historical[i])


# Where the state a failed actor is rebuilt from (its baseline) is.
_FRESH = 0  # nowhere: the actor started empty
_CHECKPOINT = 1  # in the store's newest checkpoint
_PARKED = 2  # in the store's parked snapshot (a revived actor not yet checkpointed)
_KEPT = 3  # in the cell, encoded (``_Cell.baseline``)

BaselineSource = Literal["checkpoint", "parked"]


@dataclass(slots=True)
class _Cell:
    """An actor with its supervision state (the rarely used parts created when needed: an
    empty deque alone is 760 bytes, times 10,000 devices)."""

    actor: DeviceActor
    mailbox: deque[Reading] | None = None  # readings waiting while the actor backs off
    baseline_in: int = _FRESH
    baseline: EncodedSnapshot | None = None  # only when ``baseline_in`` is ``_KEPT``
    since: _Handled | None = None  # readings handled since the baseline
    waiting: bool = False  # failed; waits for its baseline from the store
    failures: deque[int] | None = None
    suspended_until: int = 0
    parked: bool = False
    last_active: int = 0
    dirty: bool = True


def build_operator(sensor: SensorConfig) -> WindowOperator:
    """The window operator of one sensor, shared by all devices (keyed by device)."""
    w = sensor.window
    window: TumblingWindow | SlidingWindow | SessionWindow
    if w.type == "tumbling":
        window = TumblingWindow(w.size, offset=w.offset)
    elif w.type == "sliding":
        assert w.slide is not None
        window = SlidingWindow(w.size, w.slide)
    else:
        assert w.gap is not None
        window = SessionWindow(w.gap)
    m = sensor.watermark
    watermark: WatermarkStrategy
    if m.strategy == "bounded":
        watermark = BoundedOutOfOrder(m.max_delay, idle_timeout=m.idle_timeout)
    elif m.strategy == "monotonic":
        watermark = MonotonicAscending(idle_timeout=m.idle_timeout)
    else:
        watermark = Periodic(m.interval, max_delay=m.max_delay, idle_timeout=m.idle_timeout)
    lt = sensor.late
    late: LateStrategy
    if lt.strategy == "drop":
        late = Drop()
    elif lt.strategy == "allowed_lateness":
        late = AllowedLateness(lt.max_lateness)
    elif lt.strategy == "side_output":
        late = SideOutput()
    else:
        late = RecomputeWindows(lt.retention)
    aggregate: dict[str, _Aggregator] = {
        "count": Count(), "sum": Sum(), "mean": Average(), "min": Min(), "max": Max(),
    }
    for name in sensor.aggregates:
        aggregate[name] = _extra_aggregate(name)
    return WindowOperator(window=window, aggregate=aggregate, watermark=watermark, late=late)


def _extra_aggregate(name: str) -> _Aggregator:
    if name == "stddev":
        return StdDev()
    if name == "first":
        return First()
    if name == "last":
        return Last()
    return Percentile(int(name[1:]) / 100)


class ActorSystem:
    """Device actors under one supervisor. Not thread-safe: one event loop drives it."""

    def __init__(
        self, config: GatewayConfig, detector_factory: DetectorFactory = default_detectors
    ) -> None:
        self.config = config
        self.stats = ActorStats()
        self._detector_factory = detector_factory
        self._sensors = {s.name: s for s in config.sensors}
        self._operators = {s.name: build_operator(s) for s in config.sensors}
        self._cells: dict[str, _Cell] = {}
        self._passivated: set[str] = set()
        self._parked: set[str] = set()
        self._waiting: dict[str, _Cell] = {}
        # One bound method handed to every actor (``self._lookup`` makes a new one each time).
        self._sensor_lookup = self._lookup

    # -- views --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._cells)

    def __contains__(self, device: object) -> bool:
        return device in self._cells

    @property
    def devices(self) -> list[str]:
        return list(self._cells)

    def actor(self, device: str) -> DeviceActor | None:
        cell = self._cells.get(device)
        return None if cell is None else cell.actor

    @property
    def pending(self) -> int:
        """Readings waiting in mailboxes (only backing-off actors hold any)."""
        return sum(len(c.mailbox) for c in self._cells.values() if c.mailbox)

    @property
    def parked(self) -> list[str]:
        return sorted(self._parked)[:_MAX_PARKED_LISTED]

    def is_passivated(self, device: str) -> bool:
        return device in self._passivated

    @property
    def waiting(self) -> list[tuple[str, BaselineSource]]:
        """Failed actors waiting for their baseline, and where in the store it is: the
        newest checkpoint's snapshot of the device, or its parked snapshot. Hand each to
        :meth:`rebuild`."""
        return [
            (device, "parked" if cell.baseline_in == _PARKED else "checkpoint")
            for device, cell in self._waiting.items()
        ]

    def operator_stats(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for op in self._operators.values():
            for key, value in op.stats.as_dict().items():
                total[key] = total.get(key, 0) + value
        return total

    # -- messages -----------------------------------------------------------------------

    def deliver(self, readings: Iterable[Reading], now: int, out: Effects) -> None:
        """Hand readings to their actors and let every actor with mail run."""
        ready: dict[int, _Cell] = {}
        limit = self.config.actors.mailbox_size
        for reading in readings:
            cell = self._cells.get(reading.device) or self._spawn(reading.device, now)
            if cell is None:
                continue
            if cell.parked:
                self.stats.parked_dropped += 1
                continue
            mailbox = cell.mailbox
            if mailbox is None:
                mailbox = cell.mailbox = deque()
            elif len(mailbox) >= limit:
                mailbox.popleft()
                self.stats.mailbox_dropped += 1
            ready[id(cell)] = cell
            mailbox.append(reading)
        for cell in ready.values():
            self._run(cell, now, out)

    def tick(self, now: int, out: Effects) -> None:
        """Processing time: idle timeouts and periodic watermarks, ``missing`` detectors,
        and actors whose backoff has ended."""
        for name, op in self._operators.items():
            fired = op.advance(now).results
            if fired:
                by_device: dict[str, list[WindowResult]] = {}
                for result in fired:
                    by_device.setdefault(result.key, []).append(result)
                for device, results in by_device.items():
                    cell = self._cells.get(device)
                    if cell is not None and not cell.parked and not cell.waiting:
                        self._guard(cell, now, out, lambda c=cell, r=results, n=name:
                                    c.actor.on_fired(n, r, out))
        for cell in list(self._cells.values()):
            if cell.parked or cell.waiting:
                continue
            if cell.actor.watches_time:
                self._guard(cell, now, out, lambda c=cell: c.actor.on_time(now, out))
            if cell.mailbox and cell.suspended_until <= now:
                self._run(cell, now, out)

    # -- supervision ----------------------------------------------------------------------

    def _spawn(self, device: str, now: int) -> _Cell | None:
        if device in self._passivated:
            raise LookupError(f"device {device!r} is passivated: revive() it first")
        if len(self._cells) >= self.config.limits.max_devices:
            self.stats.refused += 1
            return None
        cell = _Cell(DeviceActor(self.config.gateway_id, device, self._sensor_lookup,
                                 self._detector_factory), last_active=now)
        self._cells[device] = cell
        self.stats.created += 1
        return cell

    def _lookup(self, sensor: str) -> tuple[SensorConfig, WindowOperator]:
        return self._sensors[sensor], self._operators[sensor]

    def _run(self, cell: _Cell, now: int, out: Effects) -> None:
        mailbox = cell.mailbox
        if cell.suspended_until > now or mailbox is None or cell.waiting:
            return
        actor = cell.actor
        since = cell.since
        if since is None:
            since = cell.since = _Handled()
        while mailbox:
            reading = mailbox.popleft()
            marks = (len(out.windows), len(out.alerts), len(out.late))
            try:
                actor.on_reading(
                    reading.sensor, reading.value, reading.timestamp or now, now,
                    reading.historical, out,
                )
            except Exception as exc:
                # Outputs of the half-handled reading are withdrawn; the rebuilt actor never saw it.
                del out.windows[marks[0] :], out.alerts[marks[1] :], out.late[marks[2] :]
                self._fail(cell, reading, exc, now)
                return
            since.append(reading)
        cell.mailbox = None
        cell.last_active = now
        cell.dirty = True
        if len(since) > self.config.actors.mailbox_size:
            # Bounds what a rebuild replays; kept only until the next checkpoint.
            cell.baseline = encode_snapshot(actor.device, actor.snapshot())
            cell.baseline_in = _KEPT
            cell.since = None

    def _guard(self, cell: _Cell, now: int, out: Effects, step: Any) -> None:
        marks = (len(out.windows), len(out.alerts), len(out.late))
        try:
            step()
        except Exception as exc:
            del out.windows[marks[0] :], out.alerts[marks[1] :], out.late[marks[2] :]
            self._fail(cell, None, exc, now)
        else:
            cell.dirty = True

    def _fail(self, cell: _Cell, reading: Reading | None, exc: Exception, now: int) -> None:
        device = cell.actor.device
        self.stats.restarts += 1
        if reading is not None:
            self.stats.failed_readings += 1
        log.error(
            "device %s failed on %s: %s: %s",
            device,
            "a processing-time tick" if reading is None else _describe(reading),
            type(exc).__name__,
            exc,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
        actors = self.config.actors
        failures = cell.failures
        if failures is None:
            failures = cell.failures = deque()
        failures.append(now)
        while failures and failures[0] < now - actors.restart_window:
            failures.popleft()
        if len(failures) > actors.max_restarts:
            self._park(cell, "too many failures")
            return
        backoff = min(actors.backoff_initial * 2 ** (len(failures) - 1), actors.backoff_max)
        cell.suspended_until = now + backoff
        if cell.baseline_in in (_CHECKPOINT, _PARKED):
            cell.actor.release()
            cell.waiting = True
            self._waiting[device] = cell
            return
        baseline = cell.baseline
        self._rebuild(cell, None if baseline is None else load_snapshot(baseline))

    def rebuild(self, device: str, baseline: Mapping[str, Any] | None) -> None:
        """Rebuild a waiting failed actor (:attr:`waiting`) from its baseline as read from the
        store, replaying the readings it handled since; parked when there is none."""
        cell = self._waiting.pop(device, None)
        if cell is None:
            return
        cell.waiting = False
        if baseline is None:
            log.error("device %s could not be restarted: its stored state is gone", device)
            self._park(cell, "its state could not be rebuilt")
            return
        self._rebuild(cell, baseline)

    def _rebuild(self, cell: _Cell, baseline: Mapping[str, Any] | None) -> None:
        old = cell.actor
        old.release()
        try:
            actor = DeviceActor(self.config.gateway_id, old.device, self._sensor_lookup,
                                self._detector_factory)
            if baseline is not None:
                actor.restore(baseline)
            sink = Effects()
            for sensor, value, ts, historical in cell.since or ():
                actor.on_reading(sensor, value, ts, ts, historical, sink)
        except Exception as exc:
            log.error("device %s could not be restarted: %s", old.device, exc)
            self._park(cell, "its state could not be rebuilt")
            return
        cell.actor = actor

    def _park(self, cell: _Cell, why: str) -> None:
        device = cell.actor.device
        cell.parked = True
        cell.actor.release()
        self.stats.parked_dropped += len(cell.mailbox or ())
        cell.mailbox = None
        cell.since = None
        self._parked.add(device)
        log.error(
            "device %s parked (%s); its readings are dropped and counted until the gateway "
            "restarts",
            device,
            why,
        )

    # -- state ----------------------------------------------------------------------------

    def snapshot_dirty(self) -> dict[str, EncodedSnapshot]:
        """Encoded snapshots of the actors changed since the last call: the next checkpoint's
        changes, which from now on are the baselines that failed actors are rebuilt from (so
        write them before reading any back for :meth:`rebuild`)."""
        if self._waiting:
            msg = f"rebuild() the failed actors first: {', '.join(self._waiting)}"
            raise RuntimeError(msg)
        changed: dict[str, EncodedSnapshot] = {}
        for device, cell in self._cells.items():
            if cell.dirty and not cell.parked:
                changed[device] = encode_snapshot(device, cell.actor.snapshot())
                cell.baseline_in = _CHECKPOINT
                cell.baseline = None
                cell.since = None
                cell.dirty = False
        return changed

    def snapshot_all(self) -> dict[str, dict[str, Any]]:
        return {d: c.actor.snapshot() for d, c in self._cells.items() if not c.parked}

    def restore(
        self, snapshots: Mapping[str, Mapping[str, Any]], *, checkpointed: bool = True
    ) -> None:
        """Recreate actors from snapshots (before any reading is delivered): the store's
        newest checkpoint, or, with ``checkpointed=False``, states that are in no store (a
        reload's), which are then kept encoded as baselines until the next checkpoint.

        They count as changed: the next :meth:`snapshot_dirty` encodes them.
        """
        for device, snap in snapshots.items():
            cell = self._cells.get(device) or self._spawn(device, 0)
            if cell is None:
                continue
            cell.actor.restore(snap)
            if checkpointed:
                cell.baseline_in = _CHECKPOINT
            else:
                cell.baseline_in = _KEPT
                cell.baseline = encode_snapshot(device, snap)
            cell.dirty = True
            last_seen = [s.get("last_seen") or 0 for s in snap.values()]
            cell.last_active = max(last_seen, default=0)

    def passivate_idle(self, now: int) -> dict[str, dict[str, Any]]:
        """Drop actors idle for ``passivate_after``; return their snapshots to write out."""
        limit = now - self.config.actors.passivate_after
        out: dict[str, dict[str, Any]] = {}
        for device, cell in list(self._cells.items()):
            if cell.last_active > limit or cell.mailbox or cell.parked or cell.waiting:
                continue
            if cell.actor.active_alerts or cell.actor.watches_time:
                continue  # an open alert or a 'missing' detector needs a live actor
            out[device] = cell.actor.snapshot()
            cell.actor.release()
            del self._cells[device]
            self._passivated.add(device)
        self.stats.passivated += len(out)
        return out

    def revive(self, device: str, snapshot: Mapping[str, Any] | None, now: int) -> None:
        """Bring a passivated actor back with its written-out state (the store's parked
        snapshot of it, which stays its baseline until its next checkpoint)."""
        self._passivated.discard(device)
        cell = self._spawn(device, now)
        if cell is not None and snapshot is not None:
            cell.actor.restore(snapshot)
            cell.baseline_in = _PARKED

    def views(self, devices: Iterable[str], now: int) -> list[dict[str, Any]]:
        return [c.actor.view(now) for d in devices if (c := self._cells.get(d)) is not None]

    def active_alerts(self) -> list[dict[str, Any]]:
        return [a for c in self._cells.values() for a in c.actor.active_alerts]


def _describe(reading: Reading) -> str:
    return f"reading {reading.sensor}={reading.value!r} at {reading.timestamp}"
