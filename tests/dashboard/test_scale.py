"""10,000 devices: rows are added once and then updated in place, never rebuilt per update."""

from __future__ import annotations

from datetime import UTC

from gateway.dashboard import DashboardApp
from gateway.dashboard.main_screen import MainScreen
from tests.dashboard.conftest import wait_until
from tests.dashboard.recorded import GATEWAY, PREFIX, T0, device, dumps, sensor, status
from tests.dashboard.replay import ReplaySource

DEVICES = 10_000


def updates(value_offset: float) -> list[tuple[str, bytes]]:
    return [
        (
            f"{PREFIX}/devices/dev-{i:05d}",
            dumps(device(f"dev-{i:05d}", t=sensor(float(i) + value_offset))),
        )
        for i in range(DEVICES)
    ]


async def test_ten_thousand_devices_update_in_place() -> None:
    app = DashboardApp(
        prefix=PREFIX,
        gateway_id=GATEWAY,
        source=ReplaySource([(f"{PREFIX}/status", dumps(status()))]),
        now=lambda: T0,
        tz=UTC,
        cursor_blink=False,
    )
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        table = screen.devices
        for topic, payload in updates(0.0):
            app.feed(topic, payload)
        await wait_until(pilot, lambda: table.row_count == DEVICES, "10,000 rows", within_s=60)
        assert str(table.get_cell("dev-00000", "latest")) == "0 t"

        rebuilds: list[str] = []
        table.rebuild = lambda: rebuilds.append("rebuild")  # type: ignore[method-assign]
        for topic, payload in updates(0.5):
            app.feed(topic, payload)
        await wait_until(
            pilot,
            lambda: str(table.get_cell("dev-09999", "latest")) == "9999.5 t",
            "the last device updated",
        )
        assert str(table.get_cell("dev-00000", "latest")) == "0.5 t"  # on screen
        assert table.row_count == DEVICES
        assert rebuilds == []

        # Rows updated while off screen show their new values when scrolled to.
        await pilot.press("ctrl+end")
        await wait_until(pilot, lambda: "9999.5" in app.export_screenshot(), "the last row drawn")
