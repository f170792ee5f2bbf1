"""The building blocks of Clerk's payloads that every kind shares, and validation that names
fields, never values. Each kind declares its own model (service/kinds/); unknown fields are
kept only in `raw`."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.clerk.timestamps import MAX_MS

# Epoch milliseconds a timestamp column can hold.
Millis = Annotated[int, Field(ge=0, le=MAX_MS)]


class PayloadError(ValueError):
    """A verified payload that can never apply as it is (a permanent failure)."""


class Model(BaseModel):
    """A Clerk object as we read it: unknown fields ignored (kept in `raw`), immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Verification(Model):
    status: str | None = None
    strategy: str | None = None


class Deleted(Model):
    """What Clerk sends when it deletes an object by id (the spec does not require the id)."""

    id: str | None = None


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Validate `data`; the error names fields and problems, never the values (they are PII)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<data>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise PayloadError(f"{model.__name__} payload does not fit: {problems}") from None


def deleted_id(data: dict[str, Any]) -> str | None:
    """The deleted object's id; None when the deletion names none (nothing to end)."""
    return parse(Deleted, data).id
