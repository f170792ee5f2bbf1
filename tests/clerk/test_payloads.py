"""Payload validation: errors name fields and problems, never the values (they are PII)."""

from __future__ import annotations

import pytest

from service.clerk.payloads import Deleted, Model, PayloadError, Verification, deleted_id, parse
from service.clerk.timestamps import MAX_MS
from service.kinds.users import User


class Contact(Model):
    id: str
    email_address: str
    created_at: int


def test_an_error_names_the_fields_and_never_the_values() -> None:
    secret = "jane.doe@private.example"
    with pytest.raises(PayloadError) as caught:
        parse(Contact, {"id": 42, "email_address": ["not", secret], "extra": secret})
    message = str(caught.value)
    assert message.startswith("Contact payload does not fit:")
    assert "id:" in message and "email_address:" in message and "created_at:" in message
    assert secret not in message and "42" not in message


def test_nested_fields_are_named_by_their_path() -> None:
    secret = "jane@private.example"
    data = {
        "id": "user_1",
        "created_at": 1,
        "updated_at": 1,
        "email_addresses": [{"id": "idn_1", "email_address": secret}, {"id": "idn_2"}],
    }
    with pytest.raises(PayloadError, match=r"email_addresses\.1\.email_address") as caught:
        parse(User, data)
    assert secret not in str(caught.value)


def test_a_time_past_what_a_column_holds_is_refused() -> None:
    with pytest.raises(PayloadError, match="created_at"):
        parse(User, {"id": "user_1", "created_at": MAX_MS + 1, "updated_at": 1})
    with pytest.raises(PayloadError, match="updated_at"):
        parse(User, {"id": "user_1", "created_at": 1, "updated_at": -1})


def test_unknown_fields_are_ignored_and_models_are_frozen() -> None:
    v = parse(Verification, {"status": "verified", "attempts": 3, "strategy": "email_code"})
    assert (v.status, v.strategy) == ("verified", "email_code")
    assert not hasattr(v, "attempts")
    with pytest.raises(ValueError):
        v.status = "changed"  # type: ignore[misc]


def test_deleted_id() -> None:
    assert deleted_id({"object": "user", "id": "user_1", "deleted": True}) == "user_1"
    assert parse(Deleted, {"id": "x"}).id == "x"
    # The spec requires only `object` and `deleted`: a deletion may name no object.
    assert deleted_id({"object": "user", "deleted": True}) is None
    with pytest.raises(PayloadError, match="Deleted payload does not fit: id"):
        deleted_id({"object": "user", "id": 7, "deleted": True})


def test_data_that_is_not_an_object_names_the_whole() -> None:
    with pytest.raises(PayloadError, match="<data>"):
        parse(Contact, ["a list"])  # type: ignore[arg-type]
