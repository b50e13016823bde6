"""gateway.state's public surface is exactly its ``__all__``."""

from __future__ import annotations

import subprocess
import sys
import types

import gateway.state


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name in dir(gateway.state)  # with the names imported on first use
        if not name.startswith("_")
        and not isinstance(getattr(gateway.state, name), types.ModuleType)
    }
    assert public == set(gateway.state.__all__)
    assert len(gateway.state.__all__) == len(set(gateway.state.__all__))


def test_every_error_is_a_state_error() -> None:
    from gateway.state import StateError

    for name in gateway.state.__all__:
        value = getattr(gateway.state, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, StateError), name


def test_a_gateway_without_redis_or_metrics_imports_neither() -> None:
    """The Redis client (~8 MB resident) and prometheus-client (~2 MB) are imported only by a
    gateway configured to use them."""
    code = (
        "import asyncio, sys, gateway.cli, gateway.runtime, gateway.state, gateway.sync\n"
        "from gateway.config import config_from_dict\n"
        "from gateway.runtime import Gateway\n"
        "from gateway.state import open_store\n"
        "gw = Gateway(config_from_dict({'gateway_id': 'gw', 'state': {'backend': 'memory'},\n"
        "  'sensors': [{'name': 't', 'topic': 's/+/t', 'format': 'number'}]}))\n"
        "async def sinks():\n"
        "    async with open_store(gw.config) as store, asyncio.TaskGroup() as tasks:\n"
        "        await gw._start_sync(tasks, store)\n"
        "        await gw._stop_sync()\n"
        "asyncio.run(sinks())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'prometheus_client'}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"
