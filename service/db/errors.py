"""Database failures: which are worth retrying (everything else is permanent), and how to
describe one without the data values a driver may quote."""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc

# SQLSTATE classes/codes that clear up by themselves: connection (08), serialization and
# deadlock (40), resources (53), operator intervention such as a restart (57P), statement
# timeout (57014), lock timeout (55P03), a unique race between two workers inserting the same
# live membership (23505), and a schema not migrated yet (42P01 table, 42703 column: the event
# waits for `migrate`, as SQLite's "no such table" does).
_TRANSIENT_PREFIXES = ("08", "40", "53", "57P")
_TRANSIENT_CODES = {"55P03", "57014", "23505", "42P01", "42703"}
# Drivers quote the offending value after these words; it may be a name or an email.
_VALUE_MARKERS = ("query argument", "for key", "input value")


class TransientError(RuntimeError):
    """A write failed for a reason that may pass; the caller retries with backoff."""


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
    """A one-line error for the inbox and logs, with no data values in it.

    SQL parameters are hidden by the engine, but drivers quote the offending value in some
    messages (asyncpg: "invalid input for query argument $4: 'Jane Doe'"): cut those off.
    """
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    line = text.splitlines()[0] if text else ""
    lowered = line.lower()
    for marker in _VALUE_MARKERS:
        at = lowered.find(marker)
        if at >= 0:
            cut = line.find(":", at)
            line = line[:cut] if cut >= 0 else line[: at + len(marker)]
            break
    code = sqlstate(exc)
    suffix = f" [SQLSTATE {code}]" if code else ""
    return f"{type(orig).__name__}: {line}{suffix}"[:500]
