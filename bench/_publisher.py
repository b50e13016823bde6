"""The load generator of the end-to-end benchmarks: a separate process speaking raw MQTT 3.1.1.

It pre-encodes every PUBLISH packet before it is told to go, so during the measurement it
costs one ``sendall`` per chunk of packets and the broker, not Python, sets the pace (TCP
back-pressure: "as fast as the broker takes them"). PUBACKs (QoS 1) are read and discarded by
a thread. With ``--rate`` it paces itself instead (packets built on the fly, each stamped
with the wall clock at send time, which is how the latency benchmark measures).

Protocol with the parent on stdin/stdout: it prints ``ready <count>`` once its packets are
built, waits for a line ``go``, publishes, prints ``done <seconds> <sent>`` and exits.

Payloads: JSON ``{"temp": 21.37, "ts": <epoch ms>}`` on ``bench/<device>/temperature``
(devices ``d00000`` ...), round-robin over the devices; event times advance by ``--step-ms``
per round and start ``--span-s`` seconds in the past, so windows fire as they go.

Usage: ``python bench/_publisher.py --port P --devices N --count M [--qos 1] [--rate R]``
"""

from __future__ import annotations

import argparse
import math
import socket
import sys
import threading
import time


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def _str(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def connect_packet(client_id: str) -> bytes:
    body = _str(b"MQTT") + bytes([4, 0x02]) + (0).to_bytes(2, "big") + _str(client_id.encode())
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, qos: int, mid: int) -> bytes:
    body = _str(topic) + (mid.to_bytes(2, "big") if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


def device_name(i: int) -> str:
    return f"d{i:05d}"


def payload(value: float, ts: int) -> bytes:
    return b'{"temp":%.2f,"ts":%d}' % (value, ts)


def value_of(device: int, round_: int) -> float:
    return 21.0 + 3.0 * math.sin(round_ / 30.0 + device) + (device % 7) * 0.1


class Connection:
    def __init__(self, port: int, client_id: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id))
        connack = self.sock.recv(4)
        if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
            raise SystemExit(f"publisher: broker refused the connection: {connack!r}")
        self.acks = 0
        threading.Thread(target=self._drain, daemon=True, name="puback-drain").start()

    def _drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            self.acks += len(data) // 4  # PUBACK is 4 bytes

    def close(self) -> None:
        self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        self.sock.close()


def build(args: argparse.Namespace) -> list[bytes]:
    """Every packet, grouped in chunks of ~64 KiB for sendall."""
    topics = [f"bench/{device_name(i)}/temperature".encode() for i in range(args.devices)]
    start = int(time.time() * 1000) - args.span_s * 1000
    chunks: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    mid = 0
    for n in range(args.count):
        d = n % args.devices
        r = n // args.devices
        mid = mid % 65535 + 1
        packet = publish_packet(
            topics[d], payload(value_of(d, r), start + r * args.step_ms), args.qos, mid
        )
        chunk.append(packet)
        size += len(packet)
        if size >= 65536:
            chunks.append(b"".join(chunk))
            chunk, size = [], 0
    if chunk:
        chunks.append(b"".join(chunk))
    return chunks


def run_flat_out(conn: Connection, chunks: list[bytes]) -> None:
    for chunk in chunks:
        conn.sock.sendall(chunk)


def run_paced(conn: Connection, args: argparse.Namespace) -> int:
    """``--rate`` readings/s over all devices for ``--count`` readings, stamped at send time.

    Device 0 is the "hot" device when ``--hot-every`` is set: every ``hot-every``-th of its
    readings is 1000.0 (over any threshold), the others normal, so a threshold detector raises
    and resolves periodically; the alert's ``event_time`` is the wall clock at send time.
    """
    topics = [f"bench/{device_name(i)}/temperature".encode() for i in range(args.devices)]
    interval = 0.005  # send in 5 ms slices
    per_slice = args.rate * interval
    sent = 0
    mid = 0
    owed = 0.0
    start = time.perf_counter()
    next_slice = start
    hot_seen = 0
    while sent < args.count:
        owed += per_slice
        burst = []
        now_ms = int(time.time() * 1000)
        while owed >= 1 and sent < args.count:
            owed -= 1
            d = sent % args.devices
            r = sent // args.devices
            value = value_of(d, r)
            if d == 0 and args.hot_every:
                hot_seen += 1
                if hot_seen % args.hot_every == 0:
                    value = 1000.0
            mid = mid % 65535 + 1
            burst.append(publish_packet(topics[d], payload(value, now_ms), args.qos, mid))
            sent += 1
        if burst:
            conn.sock.sendall(b"".join(burst))
        next_slice += interval
        delay = next_slice - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--qos", type=int, default=0, choices=(0, 1))
    parser.add_argument("--rate", type=float, default=0.0, help="paced readings/s (0 = flat out)")
    parser.add_argument("--hot-every", type=int, default=0)
    parser.add_argument("--step-ms", type=int, default=1000)
    parser.add_argument("--span-s", type=int, default=0)
    parser.add_argument("--client-id", default="bench-publisher")
    args = parser.parse_args()
    if args.span_s == 0 and not args.rate:
        rounds = math.ceil(args.count / args.devices)
        args.span_s = rounds * args.step_ms // 1000 + 60
    chunks = [] if args.rate else build(args)
    conn = Connection(args.port, args.client_id)
    print(f"ready {args.count}", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    started = time.perf_counter()
    if args.rate:
        sent = run_paced(conn, args)
    else:
        run_flat_out(conn, chunks)
        sent = args.count
    elapsed = time.perf_counter() - started
    if args.qos:
        deadline = time.monotonic() + 60
        while conn.acks < sent and time.monotonic() < deadline:
            time.sleep(0.01)
    conn.close()
    print(f"done {elapsed:.6f} {sent}", flush=True)


if __name__ == "__main__":
    main()
