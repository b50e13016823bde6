"""Textual messages of the dashboard: data flows down as attributes, requests flow up as these."""

from __future__ import annotations

from textual.message import Message

from gateway.dashboard._source import Connection


class MessagesPending(Message, bubble=False):
    """The inbox went from empty to non-empty; one pending notice replaces another."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MessagesPending)


class ConnectionChanged(Message, bubble=False):
    """The dashboard's link to the broker changed state."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection


class AckRequested(Message):
    """The operator asked to acknowledge an alert."""

    def __init__(self, alert_id: str) -> None:
        super().__init__()
        self.alert_id = alert_id


class DeviceChosen(Message):
    """The operator asked for a device's detail screen."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device
