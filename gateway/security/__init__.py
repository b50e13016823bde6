"""Security pieces shared by every connection.

- :mod:`gateway.security.tls`: the TLS client context (and redis-py's ``ssl_*`` arguments);
- :mod:`gateway.security.commands`: strict validation and rate limiting of dashboard commands;
- :mod:`gateway.security.errors`: connection failures classified by what the operator must do;
- :mod:`gateway.security.redact`: secrets replaced by ``***`` in any text.
"""

from gateway.security.commands import (
    AckCommand,
    Command,
    CommandError,
    CommandGate,
    CommandRateLimiter,
    command_topic,
    parse_command,
)
from gateway.security.errors import (
    ConnectionFailure,
    ConnectRefused,
    classify_connack,
    classify_connection_error,
    classify_tls_error,
)
from gateway.security.redact import configured_secrets, redact, secret_forms
from gateway.security.tls import (
    TlsSetupError,
    client_ssl_context,
    close_sockets_of,
    redis_ssl_kwargs,
    use_with_paho,
)

__all__ = [
    "AckCommand",
    "Command",
    "CommandError",
    "CommandGate",
    "CommandRateLimiter",
    "ConnectRefused",
    "ConnectionFailure",
    "TlsSetupError",
    "classify_connack",
    "classify_connection_error",
    "classify_tls_error",
    "client_ssl_context",
    "close_sockets_of",
    "command_topic",
    "configured_secrets",
    "parse_command",
    "redact",
    "redis_ssl_kwargs",
    "secret_forms",
    "use_with_paho",
]
