"""The ceiling of the end-to-end benchmark: a bare paho-mqtt 2.x subscriber in its own process.

It subscribes to ``bench/+/temperature`` and only counts (or, with ``--decode``, also decodes
each payload with orjson -- the decoder the gateway uses -- and reads ``temp`` and ``ts``).
QoS 1 messages are acknowledged by paho as they arrive (automatic ack). Prints ``ready``
once the broker has confirmed the subscription and ``done <seconds> <count>`` -- seconds from
the first message to the last, then from the 10% mark to the 90% mark -- when ``--count``
messages have arrived (or at ``--timeout``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--qos", type=int, default=0, choices=(0, 1))
    parser.add_argument("--decode", action="store_true")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    state = {"n": 0, "first": 0.0, "last": 0.0, "sum": 0.0, "t10": 0.0, "t90": 0.0}
    n10, n90 = max(1, args.count // 10), max(1, args.count * 9 // 10)
    decode = args.decode
    loads = orjson.loads
    target = args.count

    def on_message(client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        n = state["n"]
        if n == 0:
            state["first"] = time.perf_counter()
        if decode:
            data = loads(msg.payload)
            state["sum"] += data["temp"] + data["ts"] * 0
        state["n"] = n + 1
        if n + 1 == n10:
            state["t10"] = time.perf_counter()
        if n + 1 == n90:
            state["t90"] = time.perf_counter()
        if n + 1 >= target:
            state["last"] = time.perf_counter()
            client.disconnect()

    def on_subscribe(client: paho.Client, *_: Any) -> None:
        print("ready", flush=True)

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"bench-bare-{args.qos}-{int(decode)}",
        clean_session=True,
    )
    client.max_inflight_messages_set(1000)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, *_: c.subscribe("bench/+/temperature", qos=args.qos)
    client.connect("127.0.0.1", args.port, keepalive=60)
    deadline = time.monotonic() + args.timeout
    while state["n"] < target and time.monotonic() < deadline:
        if client.loop(timeout=0.5) != 0:
            break
    elapsed = (state["last"] or time.perf_counter()) - state["first"]
    middle = state["t90"] - state["t10"] if state["t90"] else float("nan")
    # seconds first->last, seconds 10%->90% (the sustained rate), messages received
    print(f"done {elapsed:.6f} {middle:.6f} {state['n']}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
