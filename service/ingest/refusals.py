"""Every way a delivery is refused, with its HTTP status. Refused deliveries store nothing."""

from __future__ import annotations


class Refusal(Exception):
    """A delivery we will not accept; `code` is stable for clients and metrics."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"Refusal({self.status}, {self.code!r})"
