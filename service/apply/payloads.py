"""The parts of Clerk's payloads we read, validated. Unknown fields are kept only in `raw`."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.apply.timestamps import MAX_MS

# Epoch milliseconds a timestamp column can hold.
Millis = Annotated[int, Field(ge=0, le=MAX_MS)]


class PayloadError(ValueError):
    """A verified payload that can never apply as it is (a permanent failure)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Verification(_Model):
    status: str | None = None
    strategy: str | None = None


class EmailAddress(_Model):
    id: str
    email_address: str
    verification: Verification | None = None
    created_at: Millis | None = None
    updated_at: Millis | None = None


class PhoneNumber(_Model):
    id: str
    phone_number: str
    verification: Verification | None = None
    created_at: Millis | None = None
    updated_at: Millis | None = None


class ExternalAccount(_Model):
    id: str
    provider: str | None = None
    provider_user_id: str | None = None
    identification_id: str | None = None
    email_address: str | None = None
    username: str | None = None
    verification: Verification | None = None
    created_at: Millis | None = None
    updated_at: Millis | None = None


class User(_Model):
    id: str
    external_id: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    image_url: str | None = None
    primary_email_address_id: str | None = None
    primary_phone_number_id: str | None = None
    email_addresses: list[EmailAddress] = Field(default_factory=list)
    phone_numbers: list[PhoneNumber] = Field(default_factory=list)
    external_accounts: list[ExternalAccount] = Field(default_factory=list)
    public_metadata: dict[str, Any] | None = None
    private_metadata: dict[str, Any] | None = None
    unsafe_metadata: dict[str, Any] | None = None
    banned: bool | None = None
    locked: bool | None = None
    last_sign_in_at: Millis | None = None
    last_active_at: Millis | None = None
    created_at: Millis
    updated_at: Millis


class Organization(_Model):
    id: str
    name: str | None = None
    slug: str | None = None
    image_url: str | None = None
    members_count: int | None = None
    max_allowed_memberships: int | None = None
    created_by: str | None = None
    public_metadata: dict[str, Any] | None = None
    private_metadata: dict[str, Any] | None = None
    created_at: Millis
    updated_at: Millis


class OrganizationRef(_Model):
    id: str


class PublicUserData(_Model):
    user_id: str


class Membership(_Model):
    id: str
    role: str | None = None
    role_name: str | None = None
    permissions: list[str] | None = None
    public_metadata: dict[str, Any] | None = None
    private_metadata: dict[str, Any] | None = None
    organization: OrganizationRef
    public_user_data: PublicUserData
    created_at: Millis
    updated_at: Millis


class Invitation(_Model):
    id: str
    organization_id: str | None = None
    public_organization_data: OrganizationRef | None = None
    email_address: str | None = None
    role: str | None = None
    status: str | None = None
    user_id: str | None = None
    inviter_id: str | None = None
    public_metadata: dict[str, Any] | None = None
    private_metadata: dict[str, Any] | None = None
    expires_at: Millis | None = None
    created_at: Millis
    updated_at: Millis


class Domain(_Model):
    id: str
    organization_id: str | None = None
    name: str | None = None
    enrollment_mode: str | None = None
    affiliation_verification: Verification | None = None
    verification: Verification | None = None
    created_at: Millis
    updated_at: Millis


class Deleted(_Model):
    id: str


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
