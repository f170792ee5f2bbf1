"""The formats (`--format`) and databases (`--dialect`) a generated schema may be written for.
The one module of the schema part that names the databases: generators compare `Target`s."""

from __future__ import annotations

from enum import StrEnum


class Target(StrEnum):
    POSTGRESQL = "postgresql"
    SQLITE = "sqlite"


class Format(StrEnum):
    DRIZZLE = "drizzle"
    PRISMA = "prisma"
    SQLALCHEMY = "sqlalchemy"
