"""The client against real Fastly traffic: every recorded secret store exchange is replayed through it.

Each recorded request is mapped to the client call that makes it; the test checks the client sends the same
method, path and body fields, and reads the recorded answer into the values the raw JSON says.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fastly_secret_store_operator.fastly import (
    ClientKey,
    FastlyClient,
    NotFoundError,
    Page,
    SealedValue,
    Secret,
    Store,
    TokenInfo,
)

PREFIX = "/resources/stores/secret"


def _time(text: str) -> datetime:
    # Independent of the client's parser: strptime with at most six fractional digits.
    base, _, fraction = text.rstrip("Z").partition(".")
    parsed = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return parsed.replace(microsecond=int(fraction[:6].ljust(6, "0"))) if fraction else parsed


def _store(raw: dict[str, str]) -> Store:
    return Store(id=raw["id"], name=raw["name"], created_at=_time(raw["created_at"]))


def _secret(raw: dict[str, Any]) -> Secret:
    return Secret(raw["name"], raw["digest"], _time(raw["created_at"]), raw.get("recreated", False))


def _page(body: dict[str, Any], item: Callable[[Any], Any]) -> Page[Any]:
    return Page([item(raw) for raw in body["data"]], body["meta"].get("next_cursor"), body["meta"]["limit"])


Call = Callable[[FastlyClient], Awaitable[object]]


def client_call(method: str, url: httpx.URL, request_body: str, body: Any) -> tuple[Call, object]:
    """The client call that makes this recorded request, and what it must return for the recorded answer."""
    path = url.path.removeprefix(PREFIX)
    sent = json.loads(request_body) if request_body.strip() else {}
    value = SealedValue(secret=sent.get("secret", ""), client_key=sent.get("client_key", ""))
    writes = {"POST": "create_secret", "PUT": "put_secret", "PATCH": "recreate_secret"}
    if (method, path) == ("GET", ""):
        return lambda c: c.list_stores_page(name=url.params.get("name")), _page(body, _store)
    if (method, path) == ("POST", ""):
        return lambda c: c.create_store(sent["name"]), _store(body)
    if (method, path) == ("POST", "/client-key"):
        key = ClientKey(*(_b64(body["public_key"]), _b64(body["signature"])), _time(body["expires_at"]))
        return lambda c: c.create_client_key(), key
    if (method, path) == ("GET", "/signing-key"):
        return lambda c: c.get_signing_key(), _b64(body["signing_key"])
    if match := re.fullmatch(r"/([^/]+)", path):
        store_id = match[1]
        if method == "GET":
            return lambda c: c.get_store(store_id), _store(body)
        if method == "DELETE":
            return lambda c: c.delete_store(store_id), None
    if match := re.fullmatch(r"/([^/]+)/secrets", path):
        store_id = match[1]
        if method == "GET":
            return lambda c: c.list_secrets_page(store_id), _page(body, _secret)
        if method in writes:
            return lambda c: getattr(c, writes[method])(store_id, sent["name"], value), _secret(body)
    if match := re.fullmatch(r"/([^/]+)/secrets/([^/]+)", path):
        store_id, name = match[1], match[2]
        if method == "GET":
            return lambda c: c.get_secret(store_id, name), _secret(body)
        if method == "DELETE":
            return lambda c: c.delete_secret(store_id, name), None
    raise AssertionError(f"no client call for the recorded {method} {url}")


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


async def test_client_reads_every_recorded_secret_store_answer(make_api: Any, recorded: Any, replay: Any) -> None:
    interactions = recorded("secret_store")
    assert len(interactions) >= 50  # the whole set, not a lucky subset
    for source, interaction in interactions:
        request = interaction["request"]
        api = make_api(lambda _, interaction=interaction: replay(interaction))
        url = httpx.URL(request["url"])
        body = interaction["response"]["body"]
        call, expected = client_call(request["method"], url, request["body"], json.loads(body) if body else None)

        assert await call(api.client) == expected, source
        sent = api.requests[0]
        assert (sent.method, sent.url.path) == (request["method"], url.path), source
        assert sent.url.params.get("name") == url.params.get("name"), source
        if request["body"].strip():
            sent_body, recorded_body = json.loads(sent.content), json.loads(request["body"])
            assert sent_body["name"] == recorded_body["name"], source
            assert sent_body.get("secret") == recorded_body.get("secret"), source


@pytest.mark.parametrize("file", ["get_store_404.yaml", "delete_store_404.yaml"])
async def test_recorded_not_found_answer_becomes_not_found_error(
    make_api: Any, recorded: Any, replay: Any, file: str
) -> None:
    [(_, interaction)] = [item for item in recorded("related_config_store_404") if item[0].endswith(file)]
    api = make_api(lambda request: replay(interaction))
    with pytest.raises(NotFoundError) as caught:
        await api.client.get_store("DOES-NOT-EXIST")
    assert str(caught.value) == json.loads(interaction["response"]["body"])["msg"]
    assert caught.value.status == 404


async def test_client_reads_the_recorded_token_record(make_api: Any, recorded: Any, replay: Any) -> None:
    [(_, interaction)] = recorded("tokens")
    api = make_api(lambda request: replay(interaction))
    raw = json.loads(interaction["response"]["body"])
    info = await api.client.get_token_self()
    assert info == TokenInfo(
        id=raw["id"],
        customer_id=raw["customer_id"],
        user_id=raw["user_id"],
        expires_at=None,
        scope=raw["scope"],
        services=tuple(raw["services"]),
    )
    sent = api.requests[0]
    assert (sent.method, sent.url.path) == (interaction["request"]["method"], "/tokens/self")
