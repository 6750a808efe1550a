"""One HTTP exchange with Fastly: headers, retries with backoff, rate limits, error mapping, reporting.

Kept apart from client.py so the client reads as a list of endpoints.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from .errors import (
    OutcomeUnknownError,
    RateLimitedError,
    ServerUnavailableError,
    error_for_status,
    read_error_body,
    redact_text,
)
from .models import RateLimit
from .transport import PooledShards as PooledShards
from .transport import environment_proxy as environment_proxy

logger = logging.getLogger(__name__)


Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]

# Transport errors raised before a single byte of the request left: safe to retry even for a POST.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
_READ_METHODS = frozenset({"GET", "HEAD"})  # Fastly does not rate-limit reads
_URLS_KEPT = 4096  # parsed request URLs kept per connection


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``attempts`` counts the first try; delays are in seconds."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_rate_limit_wait: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_rate_limit_wait) < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def backoff(self, retry: int, jitter: float) -> float:
        """The delay before retry number ``retry`` (1-based): exponential, capped, then scaled into
        [50%, 100%] by ``jitter`` in [0, 1] so that many clients do not retry in lockstep."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return ceiling * (0.5 + jitter / 2)


@dataclass(frozen=True)
class RequestInfo:
    """What one attempt did, for metrics. ``endpoint`` is a route template, never a concrete id or name."""

    method: str
    endpoint: str
    status: int | None  # None when no response came back
    elapsed: float
    rate_limit: RateLimit  # the rate-limit headers of this response (fields are None when absent)


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # e.g. "/resources/stores/secret/{store_id}"
    idempotent: bool = True  # safe to repeat after a failure that may have reached the server

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"

    def path(self, params: Mapping[str, str]) -> str:
        return self.template.format_map({key: _path_segment(key, value) for key, value in params.items()})


def _path_segment(key: str, value: str) -> str:
    # "." and ".." would be collapsed by URL normalisation: DELETE .../secrets/.. would delete the store.
    if not value or value in (".", ".."):
        raise ValueError(f"{key} {value!r} cannot be used in a Fastly API path")
    return quote(value, safe="")


def check_endpoint(endpoint: str) -> httpx.URL:
    """The endpoint as a URL: https, or plain http only to a loopback address (an emulator)."""
    url = httpx.URL(endpoint)
    if url.scheme == "https" and url.host:
        return url
    if url.scheme == "http" and _is_loopback(url.host):
        return url
    raise ValueError(
        f"Fastly endpoint {endpoint!r} must be an https:// URL "
        "(plain http:// is allowed only for 127.0.0.0/8, ::1 and localhost)"
    )


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_rate_limit(headers: httpx.Headers) -> RateLimit:
    remaining = _int_header(headers, "Fastly-RateLimit-Remaining")
    reset = _int_header(headers, "Fastly-RateLimit-Reset")
    return RateLimit(
        remaining=remaining,
        reset_at=datetime.fromtimestamp(reset, UTC) if reset is not None else None,
    )


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


def _retry_at(headers: httpx.Headers, rate_limit: RateLimit, now: datetime) -> datetime | None:
    """When a 429 says to come back: Retry-After (seconds or HTTP date), else Fastly-RateLimit-Reset."""
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        try:
            return now + timedelta(seconds=max(0.0, float(retry_after)))
        except ValueError:
            pass
        try:
            return parsedate_to_datetime(retry_after).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return rate_limit.reset_at


@dataclass
class Connection:
    """A pooled transport plus the policy for using it. One per FastlyClient.

    Requests go straight to the transport rather than through httpx.AsyncClient: the client's work per request
    (merging URLs and headers, cookies, the auth and redirect flows) was a third of each request's CPU
    (benchmarks/scale.py), and none of it is wanted here: the token is a fixed header, there are no cookies,
    and redirects are never followed (one would carry the token to wherever it points).
    """

    transport: httpx.AsyncBaseTransport
    base_url: httpx.URL
    headers: httpx.Headers = field(repr=False)  # the token is one of them
    timeout: httpx.Timeout
    retry: RetryPolicy
    redact: tuple[str, ...] = field(repr=False)  # strings that must never reach an error message (the token)
    on_response: Callable[[RequestInfo], None] | None = None
    sleep: Sleep = asyncio.sleep
    clock: Clock = utc_now
    jitter: Callable[[], float] = random.random
    rate_limit: RateLimit = field(default_factory=lambda: RateLimit(remaining=None, reset_at=None))
    writes_in_flight: int = 0
    _write_answered: asyncio.Event = field(default_factory=asyncio.Event)  # set (and replaced) per write answered
    _urls: dict[str, httpx.URL] = field(default_factory=dict)

    async def request(
        self,
        route: Route,
        path: Mapping[str, str] | None = None,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        sensitive: tuple[str, ...] = (),
    ) -> httpx.Response:
        """Send until success or until the policy says stop; return the 2xx response or raise FastlyError.
        ``sensitive`` lists body strings (sealed values) that must not leak into errors either."""
        url = route.path(path or {})
        attempt = 0
        write = route.method not in _READ_METHODS
        while True:
            attempt += 1
            retries_left = attempt < self.retry.attempts
            if write and attempt == 1:
                await self._wait_for_write_budget()
            started = time.monotonic()
            if write:
                self.writes_in_flight += 1
            try:
                response = await self._send(route.method, url, params, body)
            except httpx.TransportError as exc:
                self._report(route, None, started, RateLimit(remaining=None, reset_at=None), type(exc).__name__)
                if retries_left and (route.idempotent or isinstance(exc, _NOT_SENT)):
                    await self.sleep(self.retry.backoff(attempt, self.jitter()))
                    continue
                # Not chained: the httpx error holds the request, and so the token, for any traceback to show.
                detail = redact_text(str(exc), (*self.redact, *sensitive)).strip() or None
                if not route.idempotent and not isinstance(exc, _NOT_SENT):
                    lost = f"no answer from Fastly ({type(exc).__name__}); the request may have been carried out"
                    raise OutcomeUnknownError(lost, detail=detail) from None
                raise ServerUnavailableError(f"cannot reach Fastly ({type(exc).__name__})", detail=detail) from None
            finally:
                if write:
                    self._write_done()  # also when cancelled

            rate_limit = read_rate_limit(response.headers)
            self._report(route, response.status_code, started, rate_limit)
            if response.is_success:
                return response

            status = response.status_code
            reset_at = None
            if status == 429:
                # A 429 means the request was refused, not done: waiting and repeating is safe for any method.
                now = self.clock()
                reset_at = _retry_at(response.headers, rate_limit, now)
                wait = (reset_at - now).total_seconds() if reset_at is not None else None
                if retries_left and wait is not None and wait <= self.retry.max_rate_limit_wait:
                    await self.sleep(max(0.0, wait))
                    continue
            elif status >= 500 and retries_left and route.idempotent:
                await self.sleep(self.retry.backoff(attempt, self.jitter()))
                continue

            msg, detail = read_error_body(response.content, redact=(*self.redact, *sensitive))
            raise error_for_status(status, msg or response.reason_phrase or f"HTTP {status}", detail, reset_at=reset_at)

    async def _send(
        self, method: str, path: str, params: Mapping[str, str | int] | None, body: Mapping[str, Any] | None
    ) -> httpx.Response:
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            # Parsed once per path: a pass's writes to one store share a URL, and httpx's parsing is not free.
            url = self._urls[path] = self.base_url.copy_with(
                raw_path=self.base_url.raw_path.rstrip(b"/") + path.encode("ascii")
            )
        request = httpx.Request(
            method,
            url,
            params=params,
            headers=self.headers,
            json=body,
            extensions={"timeout": self.timeout.as_dict()},
        )
        response = await self.transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def _wait_for_write_budget(self) -> None:
        """Hold back a write the last rate-limit headers say Fastly would refuse (the writes in flight count
        against what remains): wait for the answers in flight, or for the reset if it is near; fail if the budget
        is still spent then.

        Without this, every object reconciled at once sent its writes into a spent budget, each getting a 429
        (benchmarks/scale.py --rate-limited). With no write in flight, one goes out anyway as a probe: headers
        are news of the past (the window may have been reset or the limit raised since), and a 429 costs nothing.
        """
        while self._budget_spent() and self.writes_in_flight:
            assert self.rate_limit.reset_at is not None
            wait = (self.rate_limit.reset_at - self.clock()).total_seconds()
            if wait <= self.retry.max_rate_limit_wait:
                await self.sleep(max(0.0, wait))
                return
            await self._write_answered.wait()
            if self._budget_spent():
                raise RateLimitedError(
                    "Fastly's write rate limit for this token is spent (not sent)", reset_at=self.rate_limit.reset_at
                )

    def _budget_spent(self) -> bool:
        limit = self.rate_limit
        if limit.remaining is None or limit.reset_at is None or limit.remaining > self.writes_in_flight:
            return False
        return self.clock() < limit.reset_at  # after the reset the budget is whole again

    def _write_done(self) -> None:
        self.writes_in_flight -= 1
        answered, self._write_answered = self._write_answered, asyncio.Event()
        answered.set()

    def _report(
        self, route: Route, status: int | None, started: float, rate_limit: RateLimit, failure: str = ""
    ) -> None:
        logger.debug("Fastly %s -> %s", route.label, status if status is not None else f"no response ({failure})")
        if rate_limit.remaining is not None or rate_limit.reset_at is not None:
            self.rate_limit = rate_limit
        if self.on_response is None:
            return
        info = RequestInfo(
            method=route.method,
            endpoint=route.label,
            status=status,
            elapsed=time.monotonic() - started,
            rate_limit=rate_limit,
        )
        try:
            self.on_response(info)
        except Exception:
            # A broken metrics hook must not turn a good Fastly answer into a failure.
            logger.exception("on_response hook failed for %s", route.label)
