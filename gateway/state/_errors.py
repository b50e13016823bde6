"""The state layer's exceptions: every sqlite3, aiosqlite and redis-py error becomes one of these.

Errors are converted once, at the seam where the state layer calls the library, with the
original kept as ``__cause__``; nothing above ``gateway.state`` sees a library exception.
They are classified by what the operator (or the calling code) has to do::

    StateError                   base class; the message is one line and never holds a secret
    ├── StateConfigError         settings that cannot work (bad URL, TLS file, unwritable
    │                            directory): fatal, exit with the one line
    ├── StateAuthError           Redis refused the credentials, or the ACL user may not run a
    │                            command: fatal, fix the credentials
    ├── StateUnavailable         the backend is unreachable or busy: transient, retry with
    │   │                        backoff and buffer meanwhile
    │   └── StateTimeout         a command or connection attempt timed out
    ├── StateCorruptError        the state file is damaged while running (at open a damaged
    │                            file is moved aside instead, see ``docs/state.md``)
    └── StateUsageError          a programming error: store closed or re-entered, unknown
                                 checkpoint, value that cannot be serialised
"""

from __future__ import annotations

__all__ = [
    "StateAuthError",
    "StateConfigError",
    "StateCorruptError",
    "StateError",
    "StateTimeout",
    "StateUnavailable",
    "StateUsageError",
]


class StateError(Exception):
    """Base class of every error the state layer raises."""


class StateConfigError(StateError):
    """The configuration cannot work (fatal): bad URL, unreadable TLS file, unwritable path."""


class StateAuthError(StateError):
    """The backend refused our credentials or the ACL forbids a command (fatal)."""


class StateUnavailable(StateError):
    """The backend cannot be reached right now (transient): retry with backoff."""


class StateTimeout(StateUnavailable):
    """A command or a connection attempt timed out (transient)."""


class StateCorruptError(StateError):
    """The state file is damaged; the next start moves it aside and starts fresh."""


class StateUsageError(StateError):
    """The API was used against its rules (closed store, unknown checkpoint, bad value)."""
