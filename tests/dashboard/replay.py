"""A source that replays recorded messages: the snapshot tests' stand-in for a broker.

Behaviour is tested against a real broker (test_live.py); snapshots test looks, and need a
broker address that is the same on every run.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.dashboard._source import Connection, ConnectionState, Sink


class ReplaySource:
    """Reports a synced connection to ``description`` and delivers ``messages`` on start."""

    def __init__(
        self,
        messages: Sequence[tuple[str, bytes]],
        *,
        description: str = "127.0.0.1:1883",
        connection: Connection | None = None,
    ) -> None:
        self.messages = list(messages)
        self._description = description
        self._connection = connection or Connection(ConnectionState.SYNCED, "replay")
        self.published: list[tuple[str, bytes]] = []

    @property
    def description(self) -> str:
        return self._description

    def start(self, sink: Sink, subscriptions: Sequence[str]) -> None:
        sink.connection(self._connection)
        for topic, payload in self.messages:
            sink.put(topic, payload)

    def stop(self) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> bool:
        self.published.append((topic, payload))
        return True
