"""The twelve secret store endpoints and ``GET /tokens/self``, as aiohttp handlers over the in-memory state."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum

from aiohttp import web

from .accounts import Accounts
from .keys import ClientKeyring, decode_base64
from .model import ApiError, JsonObject, bad_request, check_name
from .state import Page, SecretStores, WriteMode, parse_limit

_STORES = "/resources/stores/secret"


class Route(StrEnum):
    """Route templates, as `RecordedRequest.route` and `FaultInjector.add(route=...)` spell them."""

    LIST_STORES = f"GET {_STORES}"
    CREATE_STORE = f"POST {_STORES}"
    GET_STORE = f"GET {_STORES}/{{store_id}}"
    DELETE_STORE = f"DELETE {_STORES}/{{store_id}}"
    CREATE_CLIENT_KEY = f"POST {_STORES}/client-key"
    GET_SIGNING_KEY = f"GET {_STORES}/signing-key"
    LIST_SECRETS = f"GET {_STORES}/{{store_id}}/secrets"
    CREATE_SECRET = f"POST {_STORES}/{{store_id}}/secrets"
    PUT_SECRET = f"PUT {_STORES}/{{store_id}}/secrets"
    RECREATE_SECRET = f"PATCH {_STORES}/{{store_id}}/secrets"
    GET_SECRET = f"GET {_STORES}/{{store_id}}/secrets/{{name}}"
    DELETE_SECRET = f"DELETE {_STORES}/{{store_id}}/secrets/{{name}}"
    GET_TOKEN_SELF = "GET /tokens/self"  # noqa: S105 - a route, not a password

    @property
    def method(self) -> str:
        return self.value.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.value.split(" ", 1)[1]


def json_response(body: JsonObject, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # Pretty-printed with a trailing newline and no charset parameter, as the real API answers.
    response = web.Response(status=status, body=(json.dumps(body, indent=2) + "\n").encode(), headers=headers)
    response.headers["Content-Type"] = "application/json"
    return response


def error_response(error: ApiError, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response(error.body(), status=error.status, headers=headers)


def _page_response(page: Page) -> web.Response:
    return json_response({"data": [item.to_json() for item in page.items], "meta": page.meta()})


async def _json_object(request: web.Request) -> JsonObject:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)  # tolerates the trailing newline the Fastly CLI and go-fastly send
    except (ValueError, UnicodeDecodeError):
        raise bad_request("body: invalid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("body: must be a JSON object")
    return body


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SecretStoreApi:
    """The handlers. Each acts for the account of the request's token, which the middleware has accepted."""

    def __init__(self, stores: SecretStores, keyring: ClientKeyring, accounts: Accounts) -> None:
        self.stores = stores
        self.keyring = keyring
        self.accounts = accounts

    def _account(self, request: web.Request) -> str:
        return self.accounts.account_of(request.headers.get("Fastly-Key", ""))

    def add_routes(self, router: web.UrlDispatcher) -> None:
        handlers: dict[Route, Handler] = {
            # The fixed paths come before {store_id} so that it does not swallow them.
            Route.CREATE_CLIENT_KEY: self.create_client_key,
            Route.GET_SIGNING_KEY: self.get_signing_key,
            Route.LIST_STORES: self.list_stores,
            Route.CREATE_STORE: self.create_store,
            Route.GET_STORE: self.get_store,
            Route.DELETE_STORE: self.delete_store,
            Route.LIST_SECRETS: self.list_secrets,
            Route.CREATE_SECRET: self.create_secret,
            Route.PUT_SECRET: self.put_secret,
            Route.RECREATE_SECRET: self.recreate_secret,
            Route.GET_SECRET: self.get_secret,
            Route.DELETE_SECRET: self.delete_secret,
            Route.GET_TOKEN_SELF: self.get_token_self,
        }
        for route, handler in handlers.items():
            router.add_route(route.method, route.path, handler, name=route.name)

    async def list_stores(self, request: web.Request) -> web.Response:
        query = request.query
        page = self.stores.list_stores(
            name=query.get("name"),
            cursor=query.get("cursor"),
            limit=parse_limit(query.get("limit")),
            account=self._account(request),
        )
        return _page_response(page)

    async def create_store(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        store = self.stores.create_store(body.get("name"), self._account(request))
        return json_response(store.to_json(), status=201)

    async def get_store(self, request: web.Request) -> web.Response:
        return json_response(self.stores.get_store(request.match_info["store_id"], self._account(request)).to_json())

    async def delete_store(self, request: web.Request) -> web.Response:
        self.stores.delete_store(request.match_info["store_id"], self._account(request))
        return web.Response(status=204)

    async def create_client_key(self, request: web.Request) -> web.Response:
        return json_response(self.keyring.issue())

    async def get_signing_key(self, request: web.Request) -> web.Response:
        return json_response(self.keyring.signing_key_json())

    async def list_secrets(self, request: web.Request) -> web.Response:
        query = request.query
        limit = parse_limit(query.get("limit"))
        store_id, account = request.match_info["store_id"], self._account(request)
        page = self.stores.list_secrets(store_id, cursor=query.get("cursor"), limit=limit, account=account)
        return _page_response(page)

    async def create_secret(self, request: web.Request) -> web.Response:
        return await self._write_secret(request, WriteMode.CREATE)

    async def put_secret(self, request: web.Request) -> web.Response:
        return await self._write_secret(request, WriteMode.UPSERT)

    async def recreate_secret(self, request: web.Request) -> web.Response:
        return await self._write_secret(request, WriteMode.RECREATE)

    async def _write_secret(self, request: web.Request, mode: WriteMode) -> web.Response:
        store_id, account = request.match_info["store_id"], self._account(request)
        self.stores.get_store(store_id, account)  # a missing store is a 404 whatever the body says
        body = await _json_object(request)
        name = check_name(body.get("name"))
        if not body.get("secret"):
            raise bad_request("secret: required")
        value = decode_base64(body["secret"], "secret")
        client_key = body.get("client_key")
        # With a client key the value is a sealed box; without one it is the plaintext itself.
        plaintext = value if client_key is None else self.keyring.open(client_key, value)
        secret, replaced = self.stores.write_secret(store_id, name, plaintext, mode, account)
        return json_response(secret.to_json(recreated=replaced))

    async def get_secret(self, request: web.Request) -> web.Response:
        match, account = request.match_info, self._account(request)
        return json_response(self.stores.get_secret(match["store_id"], match["name"], account).to_json())

    async def delete_secret(self, request: web.Request) -> web.Response:
        self.stores.delete_secret(request.match_info["store_id"], request.match_info["name"], self._account(request))
        return web.Response(status=204)

    async def get_token_self(self, request: web.Request) -> web.Response:
        record = self.accounts.authenticate(
            request.headers.get("Fastly-Key", ""), ip=request.remote, user_agent=request.headers.get("User-Agent")
        )
        return json_response(record.to_json())
