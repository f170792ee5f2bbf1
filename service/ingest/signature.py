"""Svix signature verification on the raw body, with an optional second secret for rotation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from svix.webhooks import Webhook, WebhookVerificationError

from service.config import ConfigError
from service.ingest.refusals import Refusal

# Svix ids are short (msg_...); a bound keeps junk out of the inbox key and the logs.
MAX_ID_LENGTH = 255
MAX_SIGNATURE_HEADER_LENGTH = 4096
HEADER_NAMES = ("id", "timestamp", "signature")


# Each header's name and its webhook-* alias, spelled out once.
_NAMES = tuple((f"svix-{n}", f"webhook-{n}") for n in HEADER_NAMES)
# What ingest reads of a request's headers; ASGI servers hand header names over lower-cased.
WANTED_HEADERS = frozenset([n.encode() for pair in _NAMES for n in pair] + [b"content-length"])


def pick_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers ingest reads, from ASGI's raw list in one pass (the first of repeats wins,
    as in Starlette's Headers); the rest are never decoded."""
    picked: dict[str, str] = {}
    for name, value in raw:
        if name in WANTED_HEADERS:
            picked.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return picked


def delivery_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The svix-* headers (or their webhook-* aliases), checked for presence and size."""
    found: dict[str, str] = {}
    for name, alias in _NAMES:
        value = headers.get(name) or headers.get(alias)
        if not value:
            raise Refusal(400, "missing_headers", f"missing {name} header")
        found[name] = value
    if len(found["svix-id"]) > MAX_ID_LENGTH:
        raise Refusal(400, "bad_headers", "svix-id header is too long")
    if len(found["svix-signature"]) > MAX_SIGNATURE_HEADER_LENGTH:
        raise Refusal(400, "bad_headers", "svix-signature header is too long")
    return found


class SignatureVerifier:
    """Accepts a delivery signed with any configured secret (current first)."""

    def __init__(
        self, secrets: Sequence[str], variable: str = "CLERK_WEBHOOK_SIGNING_SECRET"
    ) -> None:
        if not secrets:
            raise ConfigError(f"{variable} is not set")
        try:
            self._webhooks = [Webhook(secret) for secret in secrets]
        except Exception:
            raise ConfigError(f"{variable} is not a valid whsec_... secret") from None

    def verify(self, body: bytes, headers: dict[str, str]) -> None:
        """Raise a Refusal unless one secret verifies the body and the timestamp is fresh."""
        for webhook in self._webhooks:
            try:
                webhook.verify(body, headers)
                return
            except WebhookVerificationError as exc:
                reason = str(exc)
                if "timestamp" in reason:
                    # The timestamp check precedes the signature check and is the same for
                    # every secret: a stale delivery (or a replay) is refused outright.
                    raise Refusal(
                        401, "stale_timestamp", "svix-timestamp outside tolerance"
                    ) from None
                if reason == "Invalid Signature Headers":
                    raise Refusal(400, "bad_headers", "svix-timestamp is not a number") from None
            except UnicodeDecodeError:
                raise Refusal(400, "malformed_body", "body is not UTF-8") from None
            except (ValueError, TypeError):
                # svix raises plain ValueError for an entry without a comma or bad base64.
                raise Refusal(400, "bad_headers", "malformed svix-signature or body") from None
        raise Refusal(401, "bad_signature", "no matching signature")
