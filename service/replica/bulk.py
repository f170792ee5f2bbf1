"""COPY for objects the replica has never held (reconcile's first backfill).

`encode` turns rows into COPY's text format and may run before the transaction opens, so the
server's work on one page overlaps this process's on the next. Invariant: only rows the caller
found new inside the same transaction are copied; if one exists after all (a webhook won the
race), the copy's savepoint rolls back and the upserts write them. Why:
docs/explanation/reconcile.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, Table, Text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from service import jsoncodec
from service.clerk.rows import Row, Snapshot
from service.db.dialect import dialect_of

_NULL = "\\N"
# What COPY's text format reads as an escape; nothing else needs one.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: Any) -> str:
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def _json(value: Any) -> str:
    # None is JSON null here, as in the upsert's bind step, not SQL NULL. JSON text holds no raw
    # tab, newline or carriage return (they are escaped inside strings): only backslashes.
    return jsoncodec.dumps(value).replace("\\", "\\\\")


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")  # as UTCDateTime refuses it
    return value.isoformat()


# How COPY's text format spells a value of each of the replica's column types, as an
# expression over `v` (None only in JSON columns: elsewhere NULL is spelled before).
_SPELLINGS: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (JSON, "_json(v)"),  # None too: JSON null
    (Boolean, "('t' if v else 'f')"),
    (Integer, "str(int(v))"),  # BigInteger is one
    (DateTime, "_timestamp(v)"),
    (Text, "_text(v)"),
)


def spelling(column_type: TypeEngine[Any]) -> str:
    """The expression for the column type (the replica's types only: a table with another
    type fails here, in tests, not in a backfill)."""
    impl = getattr(column_type, "impl", column_type)
    for base, expression in _SPELLINGS:
        if isinstance(column_type, base) or isinstance(impl, base):
            return expression
    raise TypeError(f"no COPY text encoding for {column_type!r}")


@cache
def line_of(table: Table) -> Callable[[Row], str]:
    """A function spelling a row of `table` as one line of COPY text, every column in table
    order (JSON columns spell None as JSON null; other columns as NULL).

    Generated once per table, one expression per column, because a row's line is built for
    every object a backfill copies: looping over per-column encoders costs several times more
    than the values' own formatting.
    """
    fields = []
    for n, column in enumerate(table.columns):
        value = f"row[{column.name!r}]"
        if isinstance(column.type, JSON):
            expression = f"_json({value})"
        else:
            expression = f"(_NULL if (v := {value}) is None else {spelling(column.type)})"
        fields.append(expression if n == 0 else f"'\\t', {expression}")
    source = f"def line(row):\n    return ''.join(({', '.join(fields)}, '\\n'))\n"
    scope: dict[str, Any] = {
        "_NULL": _NULL,
        "_json": _json,
        "_timestamp": _timestamp,
        "_text": _text,
    }
    exec(compile(source, f"<COPY line of {table.name}>", "exec"), scope)
    line: Callable[[Row], str] = scope["line"]
    return line


@dataclass(frozen=True)
class Encoded:
    """Snapshots as COPY text: per table, each snapshot's lines (its own row in the first
    table, its children's in the others), so any subset of them can be copied."""

    snapshots: tuple[Snapshot, ...]
    tables: tuple[Table, ...]
    lines: tuple[tuple[str, ...], ...]  # [table][snapshot]

    def subset(self, chosen: Sequence[Snapshot]) -> list[tuple[Table, bytes]]:
        """The lines of the `chosen` snapshots, per table; those not encoded here are
        encoded now."""
        if len(chosen) == len(self.snapshots) and all(
            a is b for a, b in zip(chosen, self.snapshots, strict=True)
        ):
            return [
                (t, "".join(lines).encode())
                for t, lines in zip(self.tables, self.lines, strict=True)
            ]
        at = {id(s): n for n, s in enumerate(self.snapshots)}
        others = encode(self.tables[0], self.tables[1:], [s for s in chosen if id(s) not in at])
        extra = iter(range(len(others.snapshots)))
        picked = [
            (self.lines, at[id(s)]) if id(s) in at else (others.lines, next(extra)) for s in chosen
        ]
        return [
            (t, "".join(lines[n][i] for lines, i in picked).encode())
            for n, t in enumerate(self.tables)
        ]


def encode(table: Table, owned: Sequence[Table], snapshots: Sequence[Snapshot]) -> Encoded:
    """The snapshots' rows in `table` and the `owned` child tables, as COPY text."""
    own = line_of(table)
    lines = [tuple(own(s.row) for s in snapshots)]
    for child in owned:
        line = line_of(child)
        lines.append(
            tuple(
                "".join(line(row) for row in rows) if (rows := s.children.get(child)) else ""
                for s in snapshots
            )
        )
    return Encoded(tuple(snapshots), (table, *owned), tuple(lines))


async def copy_new(
    conn: AsyncConnection,
    table: Table,
    owned: Sequence[Table],
    snapshots: Sequence[Snapshot],
    encoded: Encoded | None = None,
) -> bool:
    """COPY objects the replica has no row for, with their owned child rows; False when
    nothing was written (the database cannot copy, or an id already exists) and the upserts
    must do it. `encoded`: the snapshots (a superset of them) already encoded."""
    dialect = dialect_of(conn)
    if not dialect.bulk_copy:
        return False
    if len({s.id for s in snapshots}) != len(snapshots):
        return False  # one id twice: which snapshot wins is the upsert's business
    for child in owned:
        ids = [row["id"] for s in snapshots for row in s.children.get(child, ())]
        if len(set(ids)) != len(ids):
            return False
    if encoded is None or encoded.tables != (table, *owned):
        encoded = encode(table, owned, ())
    return await dialect.copy_new(conn, encoded.subset(snapshots))
