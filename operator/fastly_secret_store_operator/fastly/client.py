"""The async client for Fastly's secret store API (``/resources/stores/secret``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from .. import __version__
from ._http import (
    Clock,
    Connection,
    PooledShards,
    RequestInfo,
    RetryPolicy,
    Route,
    Sleep,
    check_endpoint,
    environment_proxy,
    utc_now,
)
from .errors import OutcomeUnknownError, UnexpectedResponseError
from .models import (
    ClientKey,
    Page,
    RateLimit,
    SealedValue,
    Secret,
    Store,
    TokenInfo,
    parse_client_key,
    parse_page,
    parse_secret,
    parse_signing_key,
    parse_store,
    parse_token_info,
)

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://api.fastly.com"
MAX_PAGE_LIMIT = 200
USER_AGENT = f"fastly-secret-store-operator/{__version__}"
# Connections per token: 32 pools of 4 (at N=300, 4 per pool cost 25% less CPU than 16); more requests wait.
POOL_SHARDS, CONNECTIONS_PER_SHARD = 32, 4

_STORES = "/resources/stores/secret"
_STORE = _STORES + "/{store_id}"
_SECRETS = _STORE + "/secrets"
_SECRET = _SECRETS + "/{name}"

LIST_STORES = Route("GET", _STORES)
CREATE_STORE = Route("POST", _STORES, idempotent=False)  # a repeat could create a second store
GET_STORE = Route("GET", _STORE)
DELETE_STORE = Route("DELETE", _STORE)
CREATE_CLIENT_KEY = Route("POST", _STORES + "/client-key")  # a repeat only mints another key
GET_SIGNING_KEY = Route("GET", _STORES + "/signing-key")
LIST_SECRETS = Route("GET", _SECRETS)
CREATE_SECRET = Route("POST", _SECRETS, idempotent=False)  # a repeat would fail as a duplicate
PUT_SECRET = Route("PUT", _SECRETS)  # create-or-recreate: repeating writes the same value again
RECREATE_SECRET = Route("PATCH", _SECRETS)
GET_SECRET = Route("GET", _SECRET)
DELETE_SECRET = Route("DELETE", _SECRET)  # a repeat after a lost answer sees 404 (NotFoundError)
GET_TOKEN_SELF = Route("GET", "/tokens/self")
#: Every route the client calls (their labels are the only endpoint values its RequestInfo reports).
ROUTES = (
    LIST_STORES,
    CREATE_STORE,
    GET_STORE,
    DELETE_STORE,
    CREATE_CLIENT_KEY,
    GET_SIGNING_KEY,
    LIST_SECRETS,
    CREATE_SECRET,
    PUT_SECRET,
    RECREATE_SECRET,
    GET_SECRET,
    DELETE_SECRET,
    GET_TOKEN_SELF,
)


class FastlyClient:
    """One token, one endpoint, one pooled connection. Use as ``async with FastlyClient(token) as client``.

    ``sleep``, ``clock`` and ``jitter`` are there for tests: they replace asyncio.sleep, the UTC wall clock
    (to read rate-limit reset times) and random.random (for backoff jitter).
    """

    def __init__(
        self,
        token: str,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: float | httpx.Timeout = 10.0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing the default is safe
        transport: httpx.AsyncBaseTransport | None = None,
        on_response: Callable[[RequestInfo], None] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not token or not token.strip() or not token.isascii() or not token.isprintable():
            raise ValueError("the Fastly API token must be a non-empty string of printable ASCII")
        url = check_endpoint(endpoint)
        self.endpoint = str(url).rstrip("/")
        self._connection = Connection(
            # Small pools rather than one big one (see PooledShards), each keeping all its connections alive:
            # httpcore closes *all* idle connections while it holds more than max_keepalive_connections in total.
            # TLS verification is on in every shard and is never configurable: the token and sealed values travel
            # on these connections.
            transport=transport
            or PooledShards(shards=POOL_SHARDS, per_shard=CONNECTIONS_PER_SHARD, proxy=environment_proxy(url)),
            base_url=url,
            headers=httpx.Headers({"Fastly-Key": token, "Accept": "application/json", "User-Agent": USER_AGENT}),
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            retry=retry,
            redact=(token,),
            on_response=on_response,
            sleep=sleep,
            clock=clock,
            jitter=jitter,
        )

    def __repr__(self) -> str:
        return f"FastlyClient(endpoint={self.endpoint!r})"

    @property
    def rate_limit(self) -> RateLimit:
        """The last Fastly-RateLimit-Remaining / -Reset seen (Fastly sends them on writes only)."""
        return self._connection.rate_limit

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._connection.aclose()

    # Stores

    def list_stores(self, *, limit: int = MAX_PAGE_LIMIT) -> AsyncIterator[Store]:
        return _follow_cursor(lambda cursor: self.list_stores_page(cursor=cursor, limit=limit))

    async def list_stores_page(
        self, *, cursor: str | None = None, limit: int = MAX_PAGE_LIMIT, name: str | None = None
    ) -> Page[Store]:
        params = _page_params(cursor, limit)
        if name is not None:
            params["name"] = name
        body = await self._json(LIST_STORES, params=params)
        return parse_page(body, parse_store, requested_limit=params["limit"])

    async def find_stores(self, name: str) -> list[Store]:
        """The stores named exactly ``name``: one filtered request when the server honours the filter. It is
        trusted only to narrow the list (what it does when nothing matches is unrecorded): matches are checked
        here, and further pages followed, so an ignored filter costs requests, never a missed store."""
        found: list[Store] = []
        cursor: str | None = None
        while True:
            page = await self.list_stores_page(name=name, cursor=cursor)
            found.extend(store for store in page.data if store.name == name)
            if not page.next_cursor or page.next_cursor == cursor:
                return found
            cursor = page.next_cursor

    async def create_store(self, name: str) -> Store:
        """OutcomeUnknownError when the answer was lost or unreadable: the store may exist. Look it up (after a
        grace period) before creating it again."""
        return await self._created(CREATE_STORE, parse_store, body={"name": name})

    async def get_store(self, store_id: str) -> Store:
        return parse_store(await self._json(GET_STORE, {"store_id": store_id}))

    async def delete_store(self, store_id: str) -> None:
        """Delete the store and every secret in it."""
        await self._connection.request(DELETE_STORE, {"store_id": store_id})

    # The token itself

    async def get_token_self(self) -> TokenInfo:
        """The token's own record: which account (customer_id) it belongs to and when it expires."""
        return parse_token_info(await self._json(GET_TOKEN_SELF))

    # Keys for client-side encryption

    async def create_client_key(self) -> ClientKey:
        """A fresh X25519 key to seal values with. Unverified: see Sealer, which checks its signature."""
        return parse_client_key(await self._json(CREATE_CLIENT_KEY))

    async def get_signing_key(self) -> bytes:
        """The Ed25519 key the API says signs client keys. Trust it only for an emulator."""
        return parse_signing_key(await self._json(GET_SIGNING_KEY))

    # Secrets

    def list_secrets(self, store_id: str, *, limit: int = MAX_PAGE_LIMIT) -> AsyncIterator[Secret]:
        return _follow_cursor(lambda cursor: self.list_secrets_page(store_id, cursor=cursor, limit=limit))

    async def list_secrets_page(
        self, store_id: str, *, cursor: str | None = None, limit: int = MAX_PAGE_LIMIT
    ) -> Page[Secret]:
        params = _page_params(cursor, limit)
        body = await self._json(LIST_SECRETS, {"store_id": store_id}, params=params)
        return parse_page(body, parse_secret, requested_limit=params["limit"])

    async def create_secret(self, store_id: str, name: str, value: SealedValue) -> Secret:
        """Create; AlreadyExistsError if the name is taken, OutcomeUnknownError if the answer was lost or
        unreadable (the secret may have been written)."""
        return await self._write_secret(CREATE_SECRET, store_id, name, value)

    async def put_secret(self, store_id: str, name: str, value: SealedValue) -> Secret:
        """Create, or recreate if the name exists."""
        return await self._write_secret(PUT_SECRET, store_id, name, value)

    async def recreate_secret(self, store_id: str, name: str, value: SealedValue) -> Secret:
        """Recreate an existing secret; fails (most likely NotFoundError) if it is missing."""
        return await self._write_secret(RECREATE_SECRET, store_id, name, value)

    async def get_secret(self, store_id: str, name: str) -> Secret:
        return parse_secret(await self._json(GET_SECRET, {"store_id": store_id, "name": name}))

    async def delete_secret(self, store_id: str, name: str) -> None:
        await self._connection.request(DELETE_SECRET, {"store_id": store_id, "name": name})

    async def _write_secret(self, route: Route, store_id: str, name: str, value: SealedValue) -> Secret:
        if not name:
            raise ValueError("a secret name must not be empty")
        body = {"name": name, "secret": value.secret, "client_key": value.client_key}
        path, sensitive = {"store_id": store_id}, (value.secret,)
        if not route.idempotent:
            return await self._created(route, parse_secret, path, body=body, sensitive=sensitive)
        return parse_secret(await self._json(route, path, body=body, sensitive=sensitive))

    async def _created(
        self,
        route: Route,
        parse: Callable[[object], T],
        path: dict[str, str] | None = None,
        *,
        body: dict[str, str],
        sensitive: tuple[str, ...] = (),
    ) -> T:
        """A non-idempotent write: a success the client cannot read (not JSON, a field missing) says the thing
        was done, not that it was refused, so it is an unknown outcome rather than an unexpected response."""
        try:
            return parse(await self._json(route, path, body=body, sensitive=sensitive))
        except UnexpectedResponseError as error:
            raise OutcomeUnknownError(
                f"Fastly's answer to {route.label} cannot be read; it may have been carried out",
                status=error.status,
                detail=error.msg,
            ) from None

    async def _json(
        self,
        route: Route,
        path: dict[str, str] | None = None,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, str] | None = None,
        sensitive: tuple[str, ...] = (),
    ) -> object:
        response = await self._connection.request(route, path, params=params, body=body, sensitive=sensitive)
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponseError(
                f"Fastly answered {route.label} with a body that is not JSON", status=response.status_code
            ) from None


def _page_params(cursor: str | None, limit: int) -> dict[str, Any]:
    if limit < 1:
        raise ValueError(f"page limit must be at least 1, not {limit}")
    params: dict[str, Any] = {"limit": min(limit, MAX_PAGE_LIMIT)}  # Fastly's maximum
    if cursor is not None:
        params["cursor"] = cursor
    return params


async def _follow_cursor(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = await fetch(cursor)
        for item in page.data:
            yield item
        if page.next_cursor is None:
            return
        if page.next_cursor in seen:  # a server bug must not become an endless loop
            raise UnexpectedResponseError("Fastly returned a page cursor it had already returned")
        seen.add(page.next_cursor)
        cursor = page.next_cursor
