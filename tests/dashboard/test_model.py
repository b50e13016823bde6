"""The dashboard's model of a gateway, message by message (no broker, no terminal)."""

from __future__ import annotations

import threading

import orjson
import pytest

import gateway.dashboard
from gateway.dashboard._model import DashboardModel, severity_rank
from gateway.dashboard._source import Inbox
from tests.dashboard.recorded import (
    GATEWAY,
    PREFIX,
    T0,
    alert,
    device,
    dumps,
    sensor,
    status,
    window,
)


def model(**kwargs: int) -> DashboardModel:
    return DashboardModel(PREFIX, GATEWAY, **kwargs)


def test_public_surface_is_complete() -> None:
    public = {name for name in vars(gateway.dashboard) if not name.startswith("_")}
    modules = {"app", "messages", "widgets", "main_screen", "device_screen", "help_screen", "ssl"}
    assert sorted(public - modules - {"annotations"}) == gateway.dashboard.__all__


def test_subscriptions_cover_siblings_status_when_the_prefix_ends_in_the_gateway_id() -> None:
    assert model().subscriptions() == [
        "edge-gateway/+/status",
        f"{PREFIX}/devices/+",
        f"{PREFIX}/windows/+/+",
        f"{PREFIX}/alerts",
        f"{PREFIX}/alerts/active",
    ]
    custom = DashboardModel("plant/gw", GATEWAY)
    assert custom.subscriptions()[0] == "plant/gw/status"


def test_status_then_last_will_keeps_the_figures() -> None:
    m = model()
    m.apply(f"{PREFIX}/status", dumps(status()), T0)
    assert m.status is not None
    assert m.status.online
    assert m.status.readings_per_s == 24.6
    m.apply(f"{PREFIX}/status", dumps({"state": "offline"}), T0 + 7_000)
    assert m.status.state == "offline"
    assert m.status.readings_per_s == 24.6
    assert m.offline_since == T0 + 7_000
    m.apply(f"{PREFIX}/status", dumps(status(ts=T0 + 9_000)), T0 + 9_000)
    assert m.offline_since is None
    m.apply(f"{PREFIX}/status", b"", T0 + 10_000)  # retained status cleared
    assert m.status is None


def test_device_state_latest_sensor_and_watermark_lag() -> None:
    m = model()
    changes = m.apply(
        f"{PREFIX}/devices/d1",
        dumps(device("d1", a=sensor(1.0, last_seen=T0 - 5_000), b=sensor(2.0, last_seen=T0))),
        T0,
    )
    assert changes.new_devices == {"d1"}
    d1 = m.devices["d1"]
    assert d1.latest is not None
    assert d1.latest.name == "b"
    assert d1.last_seen == T0
    # ts T0-1000; slowest watermark (a) = T0-5000-5050
    assert d1.watermark_lag == 9_050


def test_window_revisions_replace_their_point_and_history_is_bounded() -> None:
    m = model(history=3)
    topic = f"{PREFIX}/windows/d1/t"
    for start, mean in [(0, 1.0), (10_000, 2.0), (20_000, 3.0), (30_000, 4.0)]:
        m.apply(topic, dumps(window("d1", "t", start, mean)), T0)
    t = m.devices["d1"].sensors["t"]
    assert list(t.means) == [(10_000, 2.0), (20_000, 3.0), (30_000, 4.0)]
    m.apply(topic, dumps(window("d1", "t", 20_000, 9.0, revision=1)), T0)
    assert list(t.means) == [(10_000, 2.0), (20_000, 9.0), (30_000, 4.0)]
    assert t.last_fired is not None
    assert t.last_fired.start == 30_000  # a re-fire of an older window is not "last fired"
    m.apply(topic, dumps(window("d1", "t", 15_000, 5.0)), T0)  # out of order: kept sorted
    assert [start for start, _ in t.means] == [15_000, 20_000, 30_000]


def test_alert_lifecycle_raised_acknowledged_resolved() -> None:
    m = model()
    m.apply(f"{PREFIX}/alerts", dumps(alert("x")), T0)
    assert set(m.alerts.active) == {"x"}
    m.alerts.ack_pending.add("x")
    m.apply(f"{PREFIX}/alerts", dumps(alert("x", acknowledged=True)), T0)
    assert m.alerts.active["x"].acknowledged
    assert m.alerts.ack_pending == set()
    m.apply(f"{PREFIX}/alerts", dumps(alert("x", state="resolved")), T0)
    assert m.alerts.active == {}
    assert [a.alert_id for a in m.alerts.history] == ["x"]


def test_the_active_list_is_the_truth() -> None:
    m = model()
    m.apply(f"{PREFIX}/alerts", dumps(alert("gone")), T0)
    m.apply(f"{PREFIX}/alerts/active", dumps([alert("b", severity="warning"), alert("a")]), T0)
    assert [a.alert_id for a in m.alerts.sorted_active()] == ["a", "b"]  # critical first
    assert [(a.alert_id, a.state) for a in m.alerts.history] == [("gone", "resolved")]


def test_severity_order() -> None:
    assert severity_rank("critical") < severity_rank("warning") < severity_rank("info")
    assert severity_rank("whatever") > severity_rank("info")


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("devices/d1", b"{", "not JSON (unexpected end of data)"),
        ("devices/d1", b"[1]", "expected a JSON object, got list"),
        ("alerts", b'{"device": "d1"}', "alert without an 'alert_id'"),
        ("alerts/active", b"{}", "expected a JSON list, got dict"),
        ("windows/d1/t", b'{"mean": 1}', "window without 'window_start'/'window_end'"),
    ],
)
def test_unreadable_payloads_are_counted_with_a_reason(
    topic: str, payload: bytes, reason: str
) -> None:
    m = model()
    assert not m.apply(f"{PREFIX}/{topic}", payload, T0)
    assert m.rejected == 1
    assert m.last_rejection == f"{PREFIX}/{topic}: {reason}"


def test_nan_and_wrong_types_become_missing_values() -> None:
    m = model()
    payload = orjson.dumps(
        {
            "device": "d1",
            "sensors": {"t": {"value": "hot", "last_seen": True, "scores": {"z": "x"}}},
        }
    )
    m.apply(f"{PREFIX}/devices/d1", payload, T0)
    t = m.devices["d1"].sensors["t"]
    assert (t.value, t.last_seen, t.scores) == (None, None, {})


def test_devices_beyond_the_limit_are_counted_not_kept() -> None:
    m = model(max_devices=2)
    for name in ("a", "b", "c"):
        m.apply(f"{PREFIX}/devices/{name}", dumps(device(name)), T0)
    assert sorted(m.devices) == ["a", "b"]
    assert m.dropped_devices == 1


def test_inbox_coalesces_keeps_order_and_wakes_once() -> None:
    wakes: list[int] = []
    inbox = Inbox(lambda topic: topic != "alerts", lambda: wakes.append(1), limit=4)
    inbox.put("status", b"1")
    inbox.put("alerts", b"a1")
    inbox.put("status", b"2")  # replaces 1 and moves behind a1
    inbox.put("alerts", b"a2")
    assert wakes == [1]
    assert inbox.drain() == [("alerts", b"a1"), ("status", b"2"), ("alerts", b"a2")]
    for index in range(6):
        inbox.put("alerts", str(index).encode())
    assert len(inbox) == 4
    assert inbox.dropped == 2
    assert wakes == [1, 1]


def test_inbox_is_thread_safe() -> None:
    inbox = Inbox(lambda topic: False, lambda: None)

    def put_many(prefix: str) -> None:
        for index in range(2_000):
            inbox.put(f"{prefix}/{index}", b"")

    threads = [threading.Thread(target=put_many, args=(str(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(inbox.drain()) == 8_000
