"""`clerk-replica schema`: the source for one format and database, from the registry."""

from __future__ import annotations

from service.schema.drizzle import drizzle_schema
from service.schema.model import replica
from service.schema.prisma import prisma_schema
from service.schema.sqlalchemy_models import sqlalchemy_module
from service.schema.target import Format, Target


def generate(format_: Format, target: Target) -> str:
    """The whole source text (SQLAlchemy's serves either database: `target` is not used)."""
    described = replica()
    if format_ is Format.DRIZZLE:
        return drizzle_schema(described, target)
    if format_ is Format.SQLALCHEMY:
        return sqlalchemy_module(described)
    return prisma_schema(described, target)
