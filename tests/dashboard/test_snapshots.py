"""How the main screens look (pytest-textual-snapshot; update with ``--snapshot-update``).

Fixed terminal size, fixed clock, UTC, no cursor blink, and a replayed feed with a fixed
broker address: every run draws the same frames. Behaviour is tested in test_live.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from textual.pilot import Pilot

from gateway.dashboard import DashboardApp
from gateway.dashboard._source import Connection, ConnectionState
from gateway.dashboard.device_screen import DeviceScreen, SensorPanel
from gateway.dashboard.main_screen import MainScreen
from tests.dashboard.conftest import wait_until
from tests.dashboard.recorded import GATEWAY, PREFIX, T0, alert, dumps, site, status
from tests.dashboard.replay import ReplaySource

SIZE = (140, 40)
Snap = Callable[..., bool]


def make_app(
    messages: Sequence[tuple[str, bytes]],
    *,
    connection: Connection | None = None,
    gateway_id: str = GATEWAY,
) -> DashboardApp:
    return DashboardApp(
        prefix=f"edge-gateway/{gateway_id}",
        gateway_id=gateway_id,
        source=ReplaySource(messages, connection=connection),
        now=lambda: T0,
        tz=UTC,
        ack_by="dashboard@test",
        cursor_blink=False,
    )


def rows(count: int) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)

        def ready() -> bool:
            screen = app.screen
            return isinstance(screen, MainScreen) and screen.devices.row_count == count

        await wait_until(pilot, ready, f"{count} device rows")

    return run_before


def test_main_screen(snap_compare: Snap) -> None:
    assert snap_compare(make_app(site()), terminal_size=SIZE, run_before=rows(3))


def test_main_screen_alerts_focused_and_acknowledged(snap_compare: Snap) -> None:
    acked = alert("a-crit-1", acknowledged=True, acknowledged_at=T0, acknowledged_by="op@hq")
    messages = [*site(), (f"{PREFIX}/alerts", dumps(acked))]

    async def run_before(pilot: Pilot[Any]) -> None:
        await rows(3)(pilot)
        await pilot.press("tab")

    assert snap_compare(make_app(messages), terminal_size=SIZE, run_before=run_before)


def test_filtered_and_sorted(snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await rows(3)(pilot)
        await pilot.press("slash", "l", "enter", "s")  # boiler-1 and cold-room, by alerts

        def filtered() -> bool:
            screen = pilot.app.screen
            return isinstance(screen, MainScreen) and screen.devices.row_count == 2

        await wait_until(pilot, filtered, "the filter applied")

    assert snap_compare(make_app(site()), terminal_size=SIZE, run_before=run_before)


def test_device_detail(snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await rows(3)(pilot)
        await pilot.press("enter")  # boiler-1: first by id

        def shown() -> bool:
            screen = pilot.app.screen
            return isinstance(screen, DeviceScreen) and len(screen.query(SensorPanel)) == 2

        await wait_until(pilot, shown, "boiler-1's detail")
        await pilot.pause()

    assert snap_compare(make_app(site()), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await rows(3)(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_app(site()), terminal_size=SIZE, run_before=run_before)


def test_gateway_offline(snap_compare: Snap) -> None:
    messages = [*site(), (f"{PREFIX}/status", dumps({"state": "offline"}))]
    assert snap_compare(make_app(messages), terminal_size=SIZE, run_before=rows(3))


def test_wrong_gateway_id(snap_compare: Snap) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        await wait_until(pilot, lambda: bool(app.model.other_gateways), "the other gateway")

    messages = [(f"{PREFIX}/status", dumps(status()))]
    app = make_app(messages, gateway_id="site-b-gw9")
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_broker_down(snap_compare: Snap) -> None:
    down = Connection(ConnectionState.DISCONNECTED, "cannot reach the broker at 127.0.0.1:1883")

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()

    assert snap_compare(make_app([], connection=down), terminal_size=SIZE, run_before=run_before)
