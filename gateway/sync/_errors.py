"""Errors at sync's boundary with Redis, the upstream broker and the webhook.

Library exceptions (redis-py, paho, urllib) are converted once, here at the seam, keeping
``__cause__``; nothing above sync sees them::

    SyncError                 a sink did not take a batch; the outbox keeps it
    ├── SinkUnavailable       unreachable / timed out / busy: retry with backoff
    └── SinkRefused           reachable but refuses (credentials, permissions, wrong key
                              type, a script error): retry slowly; the operator must act

Messages name the sink and what happened; they never contain a secret.
"""

from __future__ import annotations

__all__ = ["SinkRefused", "SinkUnavailable", "SyncError"]


class SyncError(Exception):
    """A sink did not accept a batch; the entries stay in the outbox.

    ``done_upto``: the last outbox id the sink did confirm before failing (0: none); the
    drain loop acknowledges up to it, so only the rest is sent again.
    """

    def __init__(self, message: str, *, done_upto: int = 0) -> None:
        super().__init__(message)
        self.done_upto = done_upto


class SinkUnavailable(SyncError):
    """The sink cannot be reached right now (down, network, timeout); retried with backoff."""


class SinkRefused(SyncError):
    """The sink is reachable but refuses the writes; retried slowly until the operator acts."""
