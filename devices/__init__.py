"""Devices: payload formats of real device families, the sensor simulator, CSV replay.

- :mod:`devices.profiles` — ``build_decoder(format, value, timestamp, limits)``: one pure
  decoder per format (json, number, csv, senml, zigbee2mqtt, tasmota, shelly, homie,
  sparkplug_b), used by ingest.
- :mod:`devices.payloads` — the same formats encoded, for the tools and tests.
- :mod:`devices.simulator` — ``edge-gateway simulate`` and its pure generator ``iter_messages``.
- :mod:`devices.replay` — ``edge-gateway replay``.

See ``docs/devices.md``.
"""
