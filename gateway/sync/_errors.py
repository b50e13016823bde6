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
    """A sink did not accept a batch; the entries stay in the outbox."""


class SinkUnavailable(SyncError):
    """The sink cannot be reached right now (down, network, timeout); retried with backoff."""


class SinkRefused(SyncError):
    """The sink is reachable but refuses the writes; retried slowly until the operator acts."""
