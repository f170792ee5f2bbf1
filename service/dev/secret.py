"""The signing secret `dev` uses when none is configured: generated once, kept in a file."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

SECRET_FILE = "signing-secret"


def generate_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def load_or_create(state_dir: Path) -> tuple[str, Path]:
    """The persisted dev secret (created with mode 0600 on first use) and where it lives."""
    path = state_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip(), path
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = generate_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret, path


def load(state_dir: Path) -> str | None:
    path = state_dir / SECRET_FILE
    return path.read_text().strip() if path.exists() else None
