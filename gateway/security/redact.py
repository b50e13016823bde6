"""Keep secrets out of logs, status messages and errors shown to users.

:func:`redact` replaces every occurrence of each secret with ``***`` (also the forms a secret
takes once URL-encoded, JSON-escaped or ``repr``-escaped) and the password of any URL with
credentials (``scheme://user:password@host``), whether or not it is a configured secret.
:func:`configured_secrets` lists the secrets of a configuration, for a logging filter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote

from pydantic import SecretStr

from gateway.config import GatewayConfig

MASK = "***"

# scheme://user:password@  (user may be empty: redis://:password@host)
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+(?=@)")


def redact(text: str, secrets: Iterable[str | SecretStr | None]) -> str:
    """``text`` with each secret, and every password in a URL, replaced by ``***``."""
    variants: set[str] = set()
    for secret in secrets:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value:
            variants.update(secret_forms(value))
    # Longest first, so a secret that contains another is masked whole.
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, MASK)
    return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


def secret_forms(secret: str) -> set[str]:
    """The secret as it may appear in text: raw, URL-encoded, JSON- and repr-escaped."""
    forms = {secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1]}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    forms.add(repr(secret)[1:-1])
    forms.add(ascii(secret)[1:-1])
    return {f for f in forms if f}


def configured_secrets(config: GatewayConfig) -> list[str]:
    """Every secret in ``config``: the passwords of MQTT, Redis and the upstream broker, and
    the webhook headers' values."""
    sections = [config.mqtt, config.redis, config.forward.mqtt]
    found = [
        section.password.get_secret_value()
        for section in sections
        if section is not None and section.password is not None
    ]
    if config.forward.webhook is not None:
        for header in config.forward.webhook.headers.values():
            value = header.get_secret_value()
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.isalpha():  # "Bearer <token>": the token alone is secret too
                found.append(token.strip())
    return [s for s in found if s]
