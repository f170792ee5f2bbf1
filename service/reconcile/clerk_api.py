"""Clerk Backend API reads: throttled below the instance limit, 429 Retry-After honoured,
5xx and network errors retried with jittered backoff, bounded attempts, clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from service import jsoncodec
from service.clerk import bounds
from service.config import Settings, instance_variable

_MAX_RETRY_AFTER_SECONDS = 300.0


class ClerkError(RuntimeError):
    """A Backend API call that did not give us what we asked for."""


class ClerkAuthError(ClerkError):
    """401/403: the key is wrong or lacks access. Retrying cannot help."""


class ClerkRequestError(ClerkError):
    """Another 4xx: our request is wrong for this API."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ClerkUnavailable(ClerkError):
    """Gave up after the configured number of attempts (429s, 5xx, network errors)."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class RequestStats:
    requests: int = 0
    throttled: int = 0  # 429 answers
    retries: int = 0
    in_flight: int = 0  # requests sent and not yet answered
    peak_in_flight: int = 0


def _describe(response: httpx.Response, content: bytes) -> str:
    """Clerk's error JSON as one line: status, code, message (never the request's key)."""
    detail = ""
    try:
        body = jsoncodec.loads(content)
        first = body["errors"][0]
        message = first.get("long_message") or first.get("message", "")
        detail = f" {first.get('code', '')}: {message}"
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    return f"{response.status_code} {response.request.url.path}{detail}".strip()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(_MAX_RETRY_AFTER_SECONDS, max(0.0, float(value))) if value else None
    except ValueError:
        return None


async def _read_capped(response: httpx.Response, limit: int, path: str) -> bytes:
    """The body, refused past `limit` bytes (a broken or hostile API cannot fill our memory)."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ClerkRequestError(f"{path}: the answer is larger than {limit} bytes", 200)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ClerkRequestError(f"{path}: the answer is larger than {limit} bytes", 200)
        chunks.append(chunk)
    return b"".join(chunks)


def limiter_for(per_10s: int) -> AsyncLimiter:
    """A leaky bucket that never exceeds `per_10s` in any 10 s window.

    A bucket of capacity C draining r per second admits up to C + 10 r in a window, so a
    bucket sized N per 10 s would allow nearly 2 N: keep a small burst (N/10) and drain the rest.
    """
    burst = max(1, per_10s // 10)
    rate = max(per_10s - burst, 1) / 10
    return AsyncLimiter(burst, burst / rate)


class ClerkAPI:
    """One client per reconcile run of one instance (its key, its URL); every request in
    flight goes out under its one rate limiter (Clerk limits each instance by its key)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_max_seconds: float = 30.0,
    ) -> None:
        self.stats = RequestStats()
        self._key_variable = instance_variable(settings.instance_name, "SECRET_KEY")
        self._max_attempts = settings.reconcile.max_attempts
        self._backoff = wait_random_exponential(multiplier=0.5, max=backoff_max_seconds)
        self._limiter = limiter_for(settings.clerk_requests_per_10s())
        self._max_bytes = settings.reconcile.max_response_bytes
        self._client = httpx.AsyncClient(
            base_url=settings.clerk.api_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {settings.clerk_key()}",
                "Clerk-API-Version": settings.reconcile.api_version,
                "User-Agent": "clerk-replica",
            },
            timeout=settings.reconcile.timeout_seconds,
            transport=transport,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET and parse JSON; raises ClerkError subclasses, ClerkRequestError(404) included."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send(path.lstrip("/"), params or {})
        except _Retryable as exc:
            raise ClerkUnavailable(
                f"Clerk API still failing after {self._max_attempts} attempts: {exc}"
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_or_none(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """Like get, but a 404 (deleted or never existed) is None."""
        try:
            return await self.get(path, params)
        except ClerkRequestError as exc:
            if exc.status == 404:
                return None
            raise

    async def _send(self, path: str, params: dict[str, Any]) -> Any:
        async with self._limiter:
            self.stats.requests += 1
            self.stats.in_flight += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
            try:
                async with self._client.stream("GET", path, params=params) as response:
                    content = await _read_capped(response, self._max_bytes, path)
            except httpx.TransportError as exc:  # connection refused, reset, timeouts
                raise _Retryable(f"{type(exc).__name__} on {path}") from None
            finally:
                self.stats.in_flight -= 1
        if response.status_code == 429:
            self.stats.throttled += 1
            raise _Retryable(_describe(response, content), _retry_after(response))
        if response.status_code >= 500:
            raise _Retryable(_describe(response, content), _retry_after(response))
        if response.status_code in (401, 403):
            raise ClerkAuthError(
                f"Clerk rejected {self._key_variable} ({_describe(response, content)}): check "
                "that it is the secret key of this instance and has not been revoked"
            )
        if response.status_code >= 400:
            raise ClerkRequestError(_describe(response, content), response.status_code)
        if not 200 <= response.status_code < 300:  # a redirect or the like is not data
            raise ClerkRequestError(
                f"{response.status_code} {path}: not a successful answer", response.status_code
            )
        try:
            value = jsoncodec.loads(content)
        except RecursionError:
            raise ClerkRequestError(
                f"{path}: the answer is nested too deeply to read", 200
            ) from None
        except ValueError:
            raise _Retryable(f"{response.status_code} {path}: body is not JSON") from None
        # PostgreSQL keeps no NUL: dropped here, as apply drops it from deliveries.
        return bounds.strip_nul(value) if bounds.may_hold_nul(content) else value

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))

    def _count_retry(self, _state: RetryCallState) -> None:
        self.stats.retries += 1
