"""FastlyEmulator: the secret store API on a local aiohttp server, with inspectable state and faults."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from types import TracebackType

import nacl.signing
from aiohttp import web
from aiohttp.typedefs import Handler

from .accounts import DEFAULT_ACCOUNT, Accounts, account_id
from .api import Route, SecretStoreApi, error_response, json_response
from .faults import Fault, FaultInjector
from .keys import ClientKeyring
from .limits import WriteBudget
from .model import ApiError, Randomness, Secret, Store
from .state import SecretStores, WriteMode

logger = logging.getLogger(__name__)

_UNLIMITED_METHODS = frozenset({"GET", "HEAD"})  # reads are not rate limited
_ANSWER_FAULTS = frozenset({"lost", "garble"})  # faults applied after the request is carried out
# A 2xx that is not JSON: what a misconfigured proxy in front of an API might send.
_HTML_PAGE = "<html><head><title>201 Created</title></head><body><h1>Created</h1></body></html>\n"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator saw it; holds no token, body or value."""

    method: str
    route: str | None  # a Route value, e.g. "PUT /resources/stores/secret/{store_id}/secrets"; None if unknown
    path: str
    status: int | None  # None when a fault dropped the connection


class FastlyEmulator:
    def __init__(
        self,
        *,
        tokens: Iterable[str] | None = None,
        write_budget: int | None = None,
        budget_window: float = 3600.0,
        client_key_ttl: timedelta = timedelta(minutes=10),
        latency: float = 0.0,
        signing_key: nacl.signing.SigningKey | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        record_requests: bool = True,
        allow_duplicate_names: bool = False,
    ) -> None:
        """`tokens`: accepted tokens, each `TOKEN` (the default account) or `ACCOUNT:TOKEN` (None: any non-empty
        token, in the default account); stores are visible to their account's tokens only. `write_budget`:
        non-GET requests allowed per `budget_window` seconds and token before 429 (None: unlimited). `latency`:
        seconds added to every request. `seed` makes ids, digests, keys and fault rates reproducible. `clock`
        gives epoch seconds. `record_requests`: keep `requests` (long-running servers turn it off to keep memory
        flat). `allow_duplicate_names`: create a store even when its account has one of that name (else 409)."""
        self.latency = latency
        randomness = Randomness(seed)
        if signing_key is None:
            signing_key = nacl.signing.SigningKey(randomness.random_bytes(32))
        self.accounts = Accounts(tokens, randomness, clock)
        self.keyring = ClientKeyring(signing_key, randomness, client_key_ttl, clock)
        self.budget = WriteBudget(write_budget, budget_window, clock)
        self.faults = FaultInjector(seed)
        self.requests: list[RecordedRequest] = []
        self.record_requests = record_requests
        self._stores = SecretStores(randomness, clock)
        self._stores.allow_duplicate_names = allow_duplicate_names
        self._api = SecretStoreApi(self._stores, self.keyring, self.accounts)
        self._runner: web.AppRunner | None = None
        self.url = ""

    @property
    def verify_key(self) -> bytes:
        return self.keyring.verify_key

    @property
    def signing_key_b64(self) -> str:
        return base64.b64encode(self.verify_key).decode()

    # -- serving ------------------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self._api.add_routes(app.router)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        runner = web.AppRunner(self.make_app(), access_log=None)  # our own log line leaves tokens out
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.url = f"http://[{bound_host}]:{bound_port}" if ":" in bound_host else f"http://{bound_host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FastlyEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route_name = request.match_info.route.name
        route = Route[route_name].value if route_name is not None and route_name in Route.__members__ else None
        response = await self._respond(request, handler, route)
        status = None if response is None else response.status
        if self.record_requests:
            self.requests.append(RecordedRequest(request.method, route, request.path, status))
        logger.info("%s %s -> %s", request.method, request.path, "dropped" if status is None else status)
        return web.Response() if response is None else response  # never reaches the closed connection

    async def _respond(self, request: web.Request, handler: Handler, route: str | None) -> web.StreamResponse | None:
        plan = self.faults.plan(request.method, route)
        delay = self.latency + plan.delay
        if delay > 0:
            # Received in full, then slow to answer: if the client gives up (or dies) meanwhile, the request is
            # still carried out, as a real server does with a request it has read.
            await request.read()
            await asyncio.sleep(delay)
        if plan.ending is not None and plan.ending.kind not in _ANSWER_FAULTS:
            return self._injected(request, plan.ending)
        budget_headers: dict[str, str] = {}
        try:
            token = self._authenticate(request)
            if request.method not in _UNLIMITED_METHODS:
                decision = self.budget.charge(token)
                budget_headers = decision.headers()
                if not decision.allowed:
                    raise ApiError(429, "Too many requests", "rate limit exceeded; wait for Fastly-RateLimit-Reset")
            response = await self._handle(request, handler)
        except ApiError as error:
            return error_response(error, budget_headers)
        response.headers.update(budget_headers)
        if plan.ending is not None:
            return await self._spoil_answer(request, response, plan.ending)
        return response

    @staticmethod
    async def _spoil_answer(
        request: web.Request, response: web.StreamResponse, fault: Fault
    ) -> web.StreamResponse | None:
        """A "lost" or "garble" fault, once the request has been carried out."""
        if fault.kind == "lost":
            await asyncio.sleep(fault.hold)
            if request.transport is not None:
                request.transport.abort()
            return None
        if not 200 <= response.status < 300 or not isinstance(response, web.Response) or response.body is None:
            return response  # only a success is garbled
        headers = {name: value for name, value in response.headers.items() if name.lower().startswith("fastly-")}
        if fault.garbling == "not-json":
            return web.Response(status=response.status, text=_HTML_PAGE, content_type="text/html", headers=headers)
        assert isinstance(response.body, bytes)
        body = json.loads(response.body)
        body.pop(fault.garbling.removeprefix("no-").replace("-", "_"), None)
        return json_response(body, status=response.status, headers=headers)

    @staticmethod
    async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            raise ApiError(404, "Record not found") from None
        except web.HTTPException as error:  # e.g. 405 on a known path
            raise ApiError(error.status, error.reason) from None

    def _authenticate(self, request: web.Request) -> str:
        token = request.headers.get("Fastly-Key", "")
        self.accounts.authenticate(token, ip=request.remote, user_agent=request.headers.get("User-Agent"))
        return token

    @staticmethod
    def _injected(request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()  # closes the connection without a response
            return None
        error = ApiError(fault.status, HTTPStatus(fault.status).phrase, "injected fault")
        return error_response(error, fault.headers)

    # -- accounts, tokens and modes, from tests ------------------------------------------------------------

    def add_token(self, token: str, account: str = DEFAULT_ACCOUNT, *, expires_at: datetime | None = None) -> None:
        """Accept `token` as one of `account`'s from now on (a known token moves to `account`)."""
        self.accounts.add(token, account, expires_at=expires_at)

    def set_token_expiry(self, token: str, expires_at: datetime | None) -> None:
        """What `GET /tokens/self` says as `expires_at` (None: never); once past, the token gets 401."""
        self.accounts.set_expiry(token, expires_at)

    def revoke_token(self, token: str) -> None:
        """The token gets 401 from now on."""
        self.accounts.remove(token)

    @staticmethod
    def account_id(account: str = DEFAULT_ACCOUNT) -> str:
        """The `customer_id` of `account`: the same in every emulator and every run."""
        return account_id(account)

    def account_of(self, store_id: str) -> str:
        """The name of the account a store belongs to."""
        return self._stores.account_of(store_id)

    @property
    def allow_duplicate_names(self) -> bool:
        return self._stores.allow_duplicate_names

    @allow_duplicate_names.setter
    def allow_duplicate_names(self, allowed: bool) -> None:
        self._stores.allow_duplicate_names = allowed

    def refuse_client_keys(self, count: int = 1) -> None:
        """Refuse the client key of the next `count` sealed writes as expired (400), whatever its expiry."""
        self.keyring.refuse_next(count)

    def expire_client_keys(self) -> None:
        """Every client key issued so far expires now: writes sealed to one get 400 "client key expired"."""
        self.keyring.expire_all()

    def forget_client_keys(self) -> None:
        """Forget every client key issued so far: writes sealed to one get 400 "client key unknown"."""
        self.keyring.forget_all()

    # -- inspecting and changing state from tests, bypassing HTTP, faults and budgets -----------------------

    def stores(self, account: str | None = None) -> list[Store]:
        """Every store (of `account` only, if given)."""
        return self._stores.all_stores(account)

    def stores_named(self, name: str, account: str | None = None) -> list[Store]:
        return [store for store in self.stores(account) if store.name == name]

    def store(self, store_id: str) -> Store:
        return self._stores.get_store(store_id)

    def store_named(self, name: str, account: str | None = None) -> Store | None:
        return next(iter(self.stores_named(name, account)), None)

    def secrets(self, store_id: str) -> list[Secret]:
        return self._stores.all_secrets(store_id)

    def secret(self, store_id: str, name: str) -> Secret:
        return self._stores.get_secret(store_id, name)

    def secret_names(self, store_id: str) -> list[str]:
        return [secret.name for secret in self.secrets(store_id)]

    def plaintext(self, store_id: str, name: str) -> bytes:
        """The value as stored, decrypted; for tests only: no endpoint ever returns it."""
        return self._stores.get_secret(store_id, name).plaintext

    def create_store_direct(self, name: str, account: str = DEFAULT_ACCOUNT) -> Store:
        return self._stores.create_store(name, account)

    def delete_store_direct(self, store_id: str) -> None:
        self._stores.delete_store(store_id)

    def put_secret_direct(self, store_id: str, name: str, plaintext: bytes) -> Secret:
        """Creates or recreates a secret out of band: a new digest and created_at, as a real write gives."""
        secret, _ = self._stores.write_secret(store_id, name, plaintext, WriteMode.UPSERT)
        return secret

    def delete_secret_direct(self, store_id: str, name: str) -> None:
        self._stores.delete_secret(store_id, name)
