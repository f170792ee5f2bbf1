"""The answers of POST /webhooks/clerk: every refusal raised in service/ingest (status, code,
message) and every answer the endpoint returns, read from the source; what each means is said
here, and a code without a meaning fails the generator."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from docs_gen.markdown import code, page, table
from service.ingest import endpoint

INGEST = Path(__file__).resolve().parent.parent / "service" / "ingest"

MEANINGS = {
    "accepted": "Stored durably and a worker woken (or, with Redis down, left for the sweep). "
    "Svix stops retrying.",
    "duplicate": "This `svix-id` was stored before (a redelivery); nothing is applied twice.",
    "ignored": "A type the replica does not keep (`email.created`, `sms.created`, unknown "
    "types): recorded as ignored, its body not kept.",
    "unavailable": "The event could not be stored: the database refused or did not answer "
    "within `INGEST_DB_TIMEOUT_SECONDS`, or `INGEST_MAX_WAITING` deliveries already wait. "
    "Svix retries it.",
    "missing_headers": "A Svix header (`svix-id`, `svix-timestamp`, `svix-signature`, or "
    "their `webhook-*` aliases) is missing.",
    "bad_headers": "A Svix header is oversized or malformed, or `content-length` is not a number.",
    "malformed_body": "The body is not UTF-8.",
    "malformed_json": "The verified body is not JSON, or is nested too deeply.",
    "client_disconnected": "The client went away before its body arrived (no one reads this "
    "answer; it is counted).",
    "bad_signature": "No configured secret (`CLERK_WEBHOOK_SIGNING_SECRET`, or `..._PREVIOUS` "
    "during a rotation) signed this body. See [Troubleshooting](../troubleshooting.md).",
    "stale_timestamp": "`svix-timestamp` is more than five minutes from this machine's clock: "
    "a replay, or a clock that is off.",
    "body_too_large": "Over `WEBHOOK_MAX_BODY_BYTES` (from `content-length`, or while "
    "streaming); not read into memory.",
    "body_timeout": "The body did not arrive within `WEBHOOK_READ_TIMEOUT_SECONDS`.",
    "bad_envelope": "Verified JSON without a short string `type` and an object `data`.",
}


def _text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "{…}" for v in node.values)
    return "…"


def refusals(root: Path = INGEST) -> list[tuple[int, str, str]]:
    """(status, code, message) of every Refusal raised under `root`."""
    found: set[tuple[int, str, str]] = set()
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Refusal"
                and len(node.args) == 3
            ):
                status, name, message = node.args
                if not (isinstance(status, ast.Constant) and isinstance(name, ast.Constant)):
                    raise ValueError(f"{path}: a Refusal whose status or code is not a literal")
                found.add((int(str(status.value)), str(name.value), _text(message)))
    return sorted(found)


def answers() -> list[tuple[int, str, str]]:
    """(status, key, value) of every answer `_ingest` returns besides refusals: the status
    literal and the body constant it names."""
    source = Path(endpoint.__file__).read_text()
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Return)
            and isinstance(node.value, ast.Tuple)
            and len(node.value.elts) == 2
        ):
            status, body = node.value.elts
            if isinstance(status, ast.Constant) and isinstance(body, ast.Name):
                decoded = json.loads(getattr(endpoint, body.id))
                key = "status" if "status" in decoded else "error"
                found.append((int(str(status.value)), key, decoded[key]))
    return sorted(set(found))


def render(root: Path = INGEST) -> str:
    rows = []
    for status, key, value in answers():
        if value not in MEANINGS:
            raise KeyError(f"docs_gen/webhooks.py: say what the answer {value!r} means")
        rows.append((status, f'`{{"{key}": "{value}"}}`', "", MEANINGS[value]))
    by_code: dict[tuple[int, str], list[str]] = {}
    for status, name, message in refusals(root):
        by_code.setdefault((status, name), []).append(message)
    for (status, name), messages in sorted(by_code.items()):
        if name not in MEANINGS:
            raise KeyError(f"docs_gen/webhooks.py: say what the refusal {name!r} means")
        shown = "; ".join(code(m) for m in sorted(messages))
        rows.append((status, f'`{{"error": "{name}"}}`', shown, MEANINGS[name]))
    return page(
        "Answers of POST /webhooks/clerk",
        """
The same answers come from `/webhooks/clerk/<name>` for a named instance (an unknown name is
404, another method than POST 405). Every answer is JSON. A refusal carries `error` (a stable
code, also the `reason` label of `clerk_replica_deliveries_total`) and a `message`; a refused
delivery stores nothing. Svix retries anything but a 2xx.

A stored event whose payload can never apply (wrong types, missing fields) is still answered
200: it is marked `failed` in the inbox with its error, blocks nothing, and can be re-queued
with `clerk-replica replay` ([Replay failed events](../how-to/replay.md)).
""",
        table(("status", "body", "message", "meaning"), rows),
    )
