"""Alerts POSTed to an HTTP webhook: :class:`WebhookForwarder`.

Each alert is one ``POST`` of its JSON (``Content-Type: application/json``) with the
configured headers, in outbox order, through the standard library's ``urllib`` in a private
one-thread executor (one request at a time keeps the order; alerts are rare, so no HTTP
client dependency is worth it). Outcomes:

- 2xx: delivered, the cursor moves past it;
- connection error, timeout, 408, 429, 5xx: retried with backoff (the drain loop's), forever;
  the alert waits in the outbox and holds back only this sink;
- 401, 403, 404: retried the same way (the operator must fix the URL or the token), reported
  as refused;
- any other 4xx: the endpoint will never take this alert: it is skipped and counted
  (``rejected``), with one warning naming the alert and the status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from gateway.config import SyncConfig, WebhookConfig
from gateway.sync._drain import DrainLoop, wall_ms
from gateway.sync._errors import SinkRefused, SinkUnavailable
from gateway.sync._outbox import Outbox, OutboxEntryLike, OutboxSignal

__all__ = ["WEBHOOK_CURSOR", "WebhookForwarder", "redacted_http_url"]

WEBHOOK_CURSOR = "forward.webhook"
"""The outbox cursor of the webhook sink."""

_RETRY_STATUS = frozenset({408, 425, 429})
_REFUSED_STATUS = frozenset({401, 403, 404})
_log = logging.getLogger("gateway.sync.forward.webhook")


def redacted_http_url(url: str) -> str:
    """``scheme://host[:port]`` only: webhook paths and queries often carry a token."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


class WebhookForwarder(DrainLoop):
    """POSTs every alert of the outbox to ``[forward.webhook]``, in order.

    Args:
        outbox: the state store.
        cfg: the ``[forward.webhook]`` section (URL, timeout, secret headers).
        sync: the ``[sync]`` section (batch size, retry cap).
        signal: notified by the runtime after each outbox commit.
    """

    sink_name = "forward.webhook"

    def __init__(
        self,
        outbox: Outbox,
        *,
        cfg: WebhookConfig,
        sync: SyncConfig,
        signal: OutboxSignal | asyncio.Event | None = None,
        user_agent: str = "edge-gateway",
        now_ms: Callable[[], int] = wall_ms,
        cursor: str = WEBHOOK_CURSOR,
    ) -> None:
        super().__init__(
            outbox,
            cursor=cursor,
            batch_size=sync.batch_size,
            retry_max_ms=sync.retry_max,
            signal=signal,
            now_ms=now_ms,
            logger=_log,
        )
        scheme = urllib.parse.urlsplit(cfg.url).scheme
        if scheme not in ("http", "https"):
            msg = f"[forward.webhook] url must be http:// or https://, got {scheme or 'none'!r}"
            raise ValueError(msg)
        self._cfg = cfg
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": user_agent,
            **{k: v.get_secret_value() for k, v in cfg.headers.items()},
        }
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self.rejected = 0
        """Alerts the endpoint refused for good (4xx other than 401/403/404/408/429)."""

    def describe(self) -> str:
        return f"alert forwarding to webhook {redacted_http_url(self._cfg.url)}"

    async def on_open(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="gateway-webhook"
        )

    async def on_close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            # A request in flight ends by its own timeout; wait for it off the loop.
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def deliver(self, entries: Sequence[OutboxEntryLike]) -> int:
        loop = asyncio.get_running_loop()
        upto = 0
        for entry in entries:
            if entry.kind == "alert":
                try:
                    status = await loop.run_in_executor(self._executor, self._post, entry.payload)
                except OSError as exc:  # URLError, timeouts, refused connections
                    reason = getattr(exc, "reason", exc)
                    msg = f"{self.describe()}: {reason}"
                    raise SinkUnavailable(msg, done_upto=upto) from exc
                self._check(status, entry, upto)
            upto = entry.id
        return upto

    def _check(self, status: int, entry: OutboxEntryLike, upto: int) -> None:
        if 200 <= status < 300:
            return
        if status >= 500 or status in _RETRY_STATUS:
            msg = f"{self.describe()}: HTTP {status}"
            raise SinkUnavailable(msg, done_upto=upto)
        if status in _REFUSED_STATUS:
            msg = f"{self.describe()}: HTTP {status} (check url and headers)"
            raise SinkRefused(msg, done_upto=upto)
        self.rejected += 1
        self._log.warning(
            "%s: HTTP %d for alert (outbox id %d); skipped, the endpoint will not take it",
            self.describe(),
            status,
            entry.id,
        )

    def _post(self, payload: bytes) -> int:
        """One POST (in the executor thread); the HTTP status, or OSError when unreachable."""
        request = urllib.request.Request(
            self._cfg.url, data=payload, headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._cfg.timeout / 1000) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code)

    def status(self) -> dict[str, Any]:
        return {**super().status(), "rejected": self.rejected}
