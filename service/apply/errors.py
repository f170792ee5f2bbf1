"""Which failures are worth retrying. Everything else is permanent and recorded as failed."""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc

# SQLSTATE classes/codes that clear up by themselves: connection (08), serialization and
# deadlock (40), resources (53), operator intervention such as a restart (57P), lock timeout
# (55P03), and a unique race between two workers inserting the same live membership (23505).
_TRANSIENT_PREFIXES = ("08", "40", "53", "57P")
_TRANSIENT_CODES = {"55P03", "23505"}


class TransientError(RuntimeError):
    """Applying failed for a reason that may pass; the caller retries with backoff."""


def sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OSError | asyncio.TimeoutError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        code = sqlstate(exc)
        if code is not None:
            return code in _TRANSIENT_CODES or code.startswith(_TRANSIENT_PREFIXES)
        # SQLite (no SQLSTATE): "database is locked" and I/O trouble are OperationalErrors.
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return False


def describe(exc: BaseException) -> str:
    """A one-line error for the inbox and logs; SQL parameters are hidden by the engine."""
    orig = getattr(exc, "orig", None) or exc
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first_line}"[:500]
