"""The dashboard against a real broker: recorded gateway messages in, what is on screen out."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import orjson
import pytest

from gateway.dashboard import DashboardApp
from gateway.dashboard._source import ConnectionState
from gateway.dashboard.device_screen import DeviceScreen, SensorPanel
from gateway.dashboard.help_screen import HelpScreen
from gateway.dashboard.main_screen import MainScreen
from gateway.dashboard.widgets import AlertsTable, Banner, DevicesTable, GatewayHeader
from tests.dashboard.conftest import MqttPeer, synced, wait_until
from tests.dashboard.recorded import (
    GATEWAY,
    PREFIX,
    T0,
    alert,
    device,
    sensor,
    site,
    status,
    window,
)
from tests.services import Mosquitto, terminate_quietly

SIZE = (140, 40)
MakeApp = Callable[..., DashboardApp]


def main(app: DashboardApp) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen), f"expected the main screen, got {screen!r}"
    return screen


def header(app: DashboardApp) -> str:
    return app.screen.query_one(GatewayHeader).plain


def banner(app: DashboardApp) -> str:
    return app.screen.query_one(Banner).plain


def cell(app: DashboardApp, device_id: str, column: str) -> str:
    table = main(app).devices
    try:
        return str(table.get_cell(device_id, column))
    except Exception:
        return "<no such cell>"


def alert_state(app: DashboardApp, alert_id: str) -> str:
    try:
        return str(main(app).alerts.get_cell(alert_id, "state"))
    except Exception:
        return "<no such row>"


async def test_a_device_appears_and_its_values_update(make_app: MakeApp, gateway: MqttPeer) -> None:
    gateway.publish(f"{PREFIX}/status", status(), retain=True)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ONLINE" in header(app), "the gateway shown online")
        assert "no device has reported yet" in banner(app)

        gateway.publish(f"{PREFIX}/devices/boiler-1", device("boiler-1", temperature=sensor(21.5)))
        await wait_until(
            pilot,
            lambda: cell(app, "boiler-1", "latest") == "21.5 temperature",
            "boiler-1's first value",
        )
        assert cell(app, "boiler-1", "count") == "7"
        assert cell(app, "boiler-1", "seen") == "2s"
        assert banner(app) == ""  # nothing wrong: no banner

        gateway.publish(
            f"{PREFIX}/devices/boiler-1",
            device("boiler-1", active_alerts=1, temperature=sensor(23.0, count=8)),
        )
        await wait_until(
            pilot,
            lambda: cell(app, "boiler-1", "latest") == "23 temperature",
            "boiler-1's new value",
        )
        assert cell(app, "boiler-1", "count") == "8"
        assert cell(app, "boiler-1", "alerts") == "1"
        assert main(app).devices.row_count == 1
        assert "readings 24.6/s" in header(app)
        assert "outbox 120 rows" in header(app)
        assert "redis ✘ down" in header(app)
        assert "late 3" in header(app)
        assert "dead-letter 2" in header(app)


async def test_a_stale_device_is_marked(make_app: MakeApp, gateway: MqttPeer) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot, app)
        gateway.publish_many(site())
        await wait_until(pilot, lambda: main(app).devices.row_count == 3, "three devices")
        assert cell(app, "cold-room", "seen") == "⚠1m35s"  # 95 s > 30 s: stale
        assert cell(app, "pump-7", "seen") == "2s"


async def test_an_alert_is_shown_acknowledged_and_resolved(
    make_app: MakeApp, gateway: MqttPeer, mosquitto: Mosquitto
) -> None:
    commands = MqttPeer(mosquitto, "test-command-listener")
    commands.subscribe(f"{PREFIX}/commands")
    app = make_app()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await synced(pilot, app)
            gateway.publish_many(site())
            await wait_until(
                pilot, lambda: alert_state(app, "a-crit-1") == "ACTIVE", "the critical alert"
            )
            alerts = main(app).alerts
            assert str(alerts.get_cell("a-crit-1", "severity")) == "CRITICAL"
            assert str(alerts.get_cell("a-crit-1", "device")) == "boiler-1"
            assert str(alerts.get_cell("a-crit-1", "value")) == "91.5"
            # Most severe first, then the resolved one in history.
            assert [str(row.key.value) for row in alerts.ordered_rows] == [
                "a-crit-1",
                "a-warn-1",
                "history:a-old-1",
            ]

            alerts.focus()
            alerts.move_cursor(row=0)
            await pilot.press("a")
            expected = {"command": "ack", "alert_id": "a-crit-1", "by": "dashboard@test"}
            await wait_until(
                pilot,
                lambda: [orjson.loads(p) for _, p in commands.received] == [expected],
                "the ack command on P/commands",
            )
            await wait_until(
                pilot, lambda: alert_state(app, "a-crit-1") == "ack sent…", "the ack shown as sent"
            )

            # The gateway echoes the acknowledgement, then the alert resolves.
            acked = alert("a-crit-1", acknowledged=True, acknowledged_at=T0, acknowledged_by="op")
            gateway.publish(f"{PREFIX}/alerts", acked)
            await wait_until(
                pilot,
                lambda: alert_state(app, "a-crit-1") == "✔ acked by op",
                "the alert shown acknowledged",
            )

            resolved = alert("a-crit-1", state="resolved", resolved_at=T0 + 5_000)
            gateway.publish(f"{PREFIX}/alerts", resolved)
            await wait_until(
                pilot,
                lambda: alert_state(app, "history:a-crit-1") == "resolved 03:20:05",
                "the resolved alert in history",
            )
            assert alert_state(app, "a-crit-1") == "<no such row>"
            assert "alerts 1" in header(app)
    finally:
        commands.close()


async def test_ack_without_a_broker_says_it_was_not_sent(
    make_app: MakeApp, gateway: MqttPeer, mosquitto: Mosquitto
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot, app)
        gateway.publish_many(site())
        await wait_until(pilot, lambda: alert_state(app, "a-crit-1") == "ACTIVE", "the alert")
        mosquitto.stop()
        await wait_until(pilot, lambda: not app.view.connection.up, "the broker seen down")
        alerts = main(app).alerts
        alerts.focus()
        alerts.move_cursor(row=0)
        await pilot.press("a")
        await wait_until(
            pilot,
            lambda: any("acknowledgement not sent" in str(n.message) for n in app._notifications),
            "a notification that the ack was not sent",
        )
        assert alert_state(app, "a-crit-1") == "ACTIVE"


_WILL_SCRIPT = """
import sys, time, orjson, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
prefix, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="fake-gateway")
c.will_set(prefix + "/status", orjson.dumps({"state": "offline"}), qos=1, retain=True)
c.connect(host, port, keepalive=30)
c.loop_start()
status = sys.stdin.buffer.readline().strip()
c.publish(prefix + "/status", status, qos=1, retain=True).wait_for_publish(10)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def gateway_with_will(mosquitto: Mosquitto) -> Iterator[subprocess.Popen[bytes]]:
    """A process that connects with the gateway's last will and publishes an online status."""
    fake = subprocess.Popen(
        [sys.executable, "-c", _WILL_SCRIPT, PREFIX, mosquitto.host, str(mosquitto.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert fake.stdin is not None
    assert fake.stdout is not None
    try:
        fake.stdin.write(orjson.dumps(status()) + b"\n")
        fake.stdin.flush()
        assert fake.stdout.readline().strip() == b"ready"
        yield fake
    finally:
        terminate_quietly(fake)
        fake.stdout.close()
        fake.stdin.close()


async def test_the_gateways_last_will_shows_it_offline(
    make_app: MakeApp, gateway_with_will: subprocess.Popen[bytes]
) -> None:
    """The gateway's process dies (SIGKILL); the broker publishes its will; we show it."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ONLINE" in header(app), "the gateway online")
        gateway_with_will.kill()
        await wait_until(
            pilot, lambda: "OFFLINE since 03:20:00" in header(app), "the gateway shown offline"
        )
        assert "is offline since 03:20:00. Showing the last known state." in banner(app)
        assert "readings 24.6/s" in header(app)  # last known figures kept


async def test_a_retained_offline_status_is_shown(make_app: MakeApp, gateway: MqttPeer) -> None:
    gateway.publish(f"{PREFIX}/status", {"state": "offline"}, retain=True)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "OFFLINE" in header(app), "the gateway shown offline")
        assert f"Gateway '{GATEWAY}' is offline" in banner(app)


async def test_a_wrong_gateway_id_is_named_with_the_gateways_present(
    make_app: MakeApp, gateway: MqttPeer
) -> None:
    gateway.publish_many(site())
    app = make_app(prefix="edge-gateway/site-b-gw9", gateway_id="site-b-gw9")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot,
            lambda: app.view.connection.state is ConnectionState.SYNCED,
            "the retained messages delivered",
        )
        await wait_until(pilot, lambda: "Nothing from gateway" in banner(app), "the banner")
        text = banner(app)
        assert "Nothing from gateway 'site-b-gw9' on edge-gateway/site-b-gw9/status" in text
        assert f"Gateways on this broker: {GATEWAY} (online). Is gateway_id right?" in text
        assert "NO STATUS" in header(app)
        assert main(app).devices.row_count == 0


async def test_an_empty_broker_is_named(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Nothing from gateway" in banner(app), "the banner")
        assert "No gateway has published a status on this broker: is it running?" in banner(app)


async def test_a_broker_that_is_down_is_named_and_joined_when_it_starts(
    make_app: MakeApp, mosquitto: Mosquitto
) -> None:
    mosquitto.stop()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Cannot reach the broker" in banner(app), "the banner")
        assert f"cannot reach the broker at {mosquitto.host}:{mosquitto.port}" in banner(app)
        assert "broker ✘" in header(app)

        mosquitto.start()
        await synced(pilot, app)
        peer = MqttPeer(mosquitto, "late-gateway")
        try:
            peer.publish_many(site())
            await wait_until(
                pilot,
                lambda: main(app).devices.row_count == 3,
                "the devices after the broker came up",
            )
            assert "broker ✔" in header(app)
        finally:
            peer.close()


async def test_it_reconnects_after_the_broker_restarts(
    make_app: MakeApp, mosquitto: Mosquitto
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot, app)
        peer = MqttPeer(mosquitto, "gateway-before")
        peer.publish_many(site())
        peer.close()
        await wait_until(pilot, lambda: main(app).devices.row_count == 3, "three devices")

        mosquitto.stop()
        await wait_until(
            pilot, lambda: "Cannot reach the broker" in banner(app), "the lost broker named"
        )
        assert main(app).devices.row_count == 3  # last known state kept
        assert "Showing the last known state." in banner(app)

        mosquitto.start()
        await wait_until(
            pilot,
            lambda: app.view.connection.state is ConnectionState.SYNCED,
            "the dashboard back on the broker",
        )
        peer = MqttPeer(mosquitto, "gateway-after")
        try:
            peer.publish(f"{PREFIX}/devices/pump-7", device("pump-7", vibration=sensor(9.75)))
            await wait_until(
                pilot,
                lambda: cell(app, "pump-7", "latest") == "9.75 vibration",
                "an update after the restart",
            )
        finally:
            peer.close()

        mosquitto.restart()
        await wait_until(
            pilot,
            lambda: app.view.connection.state is ConnectionState.SYNCED,
            "the dashboard back after restart()",
        )
        assert banner(app) == ""


async def test_filter_with_slash_and_sort(make_app: MakeApp, gateway: MqttPeer) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot, app)
        gateway.publish_many(site())
        table = main(app).devices
        await wait_until(pilot, lambda: table.row_count == 3, "three devices")

        def order() -> list[str]:
            return [str(row.key.value) for row in table.ordered_rows]

        assert order() == ["boiler-1", "cold-room", "pump-7"]

        await pilot.press("slash", "p", "u", "m")
        await wait_until(pilot, lambda: order() == ["pump-7"], "the filter applied")
        await pilot.press("enter")
        assert table.has_focus
        assert "filter 'pum'" in str(table.border_title)

        await pilot.press("escape")
        await wait_until(pilot, lambda: table.row_count == 3, "the filter cleared")

        await pilot.press("slash", "h", "u", "m", "enter")  # sensor names match too
        await wait_until(pilot, lambda: order() == ["cold-room"], "the sensor-name filter")
        await pilot.press("escape")
        await wait_until(pilot, lambda: table.row_count == 3, "the filter cleared")

        await pilot.press("s")  # by alerts, most first
        assert table.sort_column == "alerts"
        assert order() == ["boiler-1", "pump-7", "cold-room"]
        await pilot.press("r")
        assert order() == ["cold-room", "pump-7", "boiler-1"]
        await pilot.press("s", "s", "s")  # latest value
        assert table.sort_column == "seen"
        assert order()[-1] == "cold-room"


async def test_enter_opens_the_device_detail(make_app: MakeApp, gateway: MqttPeer) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot, app)
        gateway.publish_many(site())
        table = main(app).devices
        await wait_until(pilot, lambda: table.row_count == 3, "three devices")
        await wait_until(
            pilot,
            lambda: len(app.model.devices["boiler-1"].sensors["temperature"].means) == 8,
            "the fired windows",
        )
        table.move_cursor(row=table.get_row_index("boiler-1"))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DeviceScreen), "the detail screen")
        await wait_until(pilot, lambda: len(app.screen.query(SensorPanel)) == 2, "two sensors")
        panels = {p.sensor_name: p for p in app.screen.query(SensorPanel)}
        temperature = panels["temperature"].plain
        assert "open window 03:19:50-03:20:00  n 7  mean 91  min 90  max 91.5" in temperature
        assert "last fired  03:19:40-03:19:50  n 10  mean 90  min 89  max 91" in temperature
        assert "watermark   03:19:52  lag 6s" in temperature
        assert "threshold ██████████ 1.00" in temperature
        assert "zscore █████████░ 0.93" in temperature
        assert "last 8 windows, min 70 max 90" in temperature
        assert "late events 2" in panels["pressure"].plain

        # A re-fired window (revision 1) replaces its point in the sparkline.
        gateway.publish(
            f"{PREFIX}/windows/boiler-1/temperature",
            window("boiler-1", "temperature", T0 - 20_000, 95.0, revision=1),
        )
        await wait_until(
            pilot, lambda: "max 95" in panels["temperature"].plain, "the re-fired window"
        )
        assert "last 8 windows" in panels["temperature"].plain

        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_help_and_quit(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("q")
    assert app.return_code == 0


async def test_updates_are_coalesced(make_app: MakeApp, gateway: MqttPeer) -> None:
    """500 updates of one device: the last one shows, after only a handful of refreshes."""
    gateway.publish(f"{PREFIX}/status", status(), retain=True)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ONLINE" in header(app), "the status")
        before = app.flushes
        for value in range(500):
            gateway.publish(f"{PREFIX}/devices/d1", device("d1", t=sensor(float(value))))
        await wait_until(pilot, lambda: cell(app, "d1", "latest") == "499 t", "the last value")
        assert app.flushes - before < 100


@pytest.mark.parametrize("bad", [b"{not json", b"[1, 2]", b'"text"'])
async def test_unreadable_messages_are_counted_not_fatal(
    make_app: MakeApp, gateway: MqttPeer, bad: bytes
) -> None:
    gateway.publish(f"{PREFIX}/status", status(), retain=True)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "ONLINE" in header(app), "the status")
        gateway.publish(f"{PREFIX}/devices/broken", bad)
        gateway.publish(f"{PREFIX}/devices/fine", device("fine", t=sensor(1.0)))
        await wait_until(pilot, lambda: cell(app, "fine", "latest") == "1 t", "the good device")
        assert "unreadable msgs 1" in header(app)
        assert app.model.last_rejection is not None
        assert app.model.last_rejection.startswith(f"{PREFIX}/devices/broken: ")
        assert isinstance(app.screen.query_one("#alerts"), AlertsTable)
        assert isinstance(main(app).devices, DevicesTable)
