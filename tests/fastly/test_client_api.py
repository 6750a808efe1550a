"""Each endpoint: the request it sends and what it makes of the answer; pagination; time parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fastly_secret_store_operator.fastly import (
    FastlyClient,
    Page,
    SealedValue,
    Secret,
    Store,
    UnexpectedResponseError,
    parse_time,
)

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ZERO_KEY = "A" * 43 + "="  # 32 zero bytes
SEALED = SealedValue(secret="c2VhbGVk", client_key="2iMPR4MnTZ3vC2PjShB6PQM8wLb2ckfUOLKwex5sYUc=")


def store_json(index: int, name: str | None = None) -> dict[str, str]:
    return {"id": f"store{index:017d}", "name": name or f"store-{index}", "created_at": "2026-11-28T10:00:00Z"}


def secret_json(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "digest": "ZGlnZXN0", "created_at": "2026-11-28T10:00:00Z", **extra}


def paged(items: list[Any], limit: int, next_cursor: str | None = None) -> httpx.Response:
    meta: dict[str, object] = {"limit": limit}
    if next_cursor is not None:
        meta["next_cursor"] = next_cursor
    return httpx.Response(200, json={"data": items, "meta": meta})


class TestStores:
    async def test_create_store(self, make_api: Any) -> None:
        api = make_api(lambda request: httpx.Response(201, json=store_json(1, "checkout")))
        store = await api.client.create_store("checkout")
        assert store == Store(id="store00000000000000001", name="checkout", created_at=T0)
        assert api.routes == ["POST /resources/stores/secret"]
        assert json.loads(api.requests[0].content) == {"name": "checkout"}

    async def test_get_store(self, make_api: Any) -> None:
        api = make_api(lambda request: httpx.Response(200, json=store_json(1)))
        assert (await api.client.get_store("store00000000000000001")).name == "store-1"
        assert api.routes == ["GET /resources/stores/secret/store00000000000000001"]

    async def test_delete_store(self, make_api: Any) -> None:
        api = make_api(lambda request: httpx.Response(204))
        assert await api.client.delete_store("s1") is None
        assert api.routes == ["DELETE /resources/stores/secret/s1"]

    async def test_list_stores_page(self, make_api: Any) -> None:
        api = make_api(lambda request: paged([store_json(1), store_json(2)], 2, "Y3Vyc29y"))
        page = await api.client.list_stores_page(cursor="c0", limit=2, name="store-1")
        assert page == Page(
            data=[Store("store00000000000000001", "store-1", T0), Store("store00000000000000002", "store-2", T0)],
            next_cursor="Y3Vyc29y",
            limit=2,
        )
        assert dict(api.requests[0].url.params) == {"cursor": "c0", "limit": "2", "name": "store-1"}

    async def test_list_stores_follows_cursors(self, make_api: Any) -> None:
        pages = {None: ("a", [1, 2]), "a": ("b", [3, 4]), "b": (None, [5])}

        def handler(request: httpx.Request) -> httpx.Response:
            next_cursor, indexes = pages[request.url.params.get("cursor")]
            return paged([store_json(i) for i in indexes], 2, next_cursor)

        api = make_api(handler)
        names = [store.name async for store in api.client.list_stores(limit=2)]
        assert names == ["store-1", "store-2", "store-3", "store-4", "store-5"]
        assert [request.url.params.get("cursor") for request in api.requests] == [None, "a", "b"]

    async def test_an_empty_next_cursor_ends_the_list(self, make_api: Any) -> None:
        api = make_api(lambda request: paged([store_json(1)], 200, ""))
        assert len([store async for store in api.client.list_stores()]) == 1
        assert len(api.requests) == 1

    async def test_a_repeated_cursor_is_an_error_not_a_loop(self, make_api: Any) -> None:
        api = make_api(lambda request: paged([store_json(1)], 1, "same"))
        with pytest.raises(UnexpectedResponseError, match="cursor"):
            _ = [store async for store in api.client.list_stores(limit=1)]
        assert len(api.requests) == 2

    async def test_a_page_without_meta_reports_the_requested_limit(self, make_api: Any) -> None:
        api = make_api(lambda request: httpx.Response(200, json={"data": []}))
        assert await api.client.list_stores_page(limit=50) == Page(data=[], next_cursor=None, limit=50)

    async def test_limit_is_clamped_to_fastlys_maximum(self, make_api: Any) -> None:
        api = make_api(lambda request: paged([], 200))
        await api.client.list_stores_page(limit=1000)
        _ = [secret async for secret in api.client.list_secrets("s1", limit=500)]
        assert [request.url.params["limit"] for request in api.requests] == ["200", "200"]

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_limit_below_one_is_refused(self, make_api: Any, limit: int) -> None:
        api = make_api(lambda request: paged([], 200))
        with pytest.raises(ValueError, match="limit"):
            await api.client.list_stores_page(limit=limit)
        with pytest.raises(ValueError, match="limit"):
            _ = [store async for store in api.client.list_stores(limit=limit)]
        assert api.requests == []


class TestFindStores:
    @pytest.mark.parametrize(
        ("answer", "found"),
        [
            pytest.param([], [], id="none"),
            pytest.param([store_json(1, "checkout")], ["store00000000000000001"], id="one"),
            pytest.param(
                [store_json(1, "checkout"), store_json(2, "checkout")],
                ["store00000000000000001", "store00000000000000002"],
                id="several",
            ),
            # If the server ignored the filter it would answer with other stores: they must not match.
            pytest.param([store_json(1, "checkout-old"), store_json(2, "other")], [], id="filter-ignored"),
            pytest.param(
                [store_json(1, "Checkout"), store_json(2, "checkout")], ["store00000000000000002"], id="exact-case"
            ),
        ],
    )
    async def test_one_filtered_request_then_an_exact_match(
        self, make_api: Any, answer: list[dict[str, str]], found: list[str]
    ) -> None:
        api = make_api(lambda request: paged(answer, 10))
        stores = await api.client.find_stores("checkout")
        assert [store.id for store in stores] == found
        assert len(api.requests) == 1
        assert api.requests[0].url.params["name"] == "checkout"


class TestKeys:
    async def test_create_client_key(self, make_api: Any) -> None:
        body = {
            "public_key": "2iMPR4MnTZ3vC2PjShB6PQM8wLb2ckfUOLKwex5sYUc=",
            "signature": "xfLzo9i8KTwie/FZID5ZAkPWiCCzbV1T77xUrzuRx3zUvdnF/I6m9Q0WKTKl8qW++NDPhrc/1wmBvILV7EmdAw==",
            "expires_at": "2023-11-27T16:04:54.798109645Z",
        }
        api = make_api(lambda request: httpx.Response(200, json=body))
        key = await api.client.create_client_key()
        assert len(key.public_key) == 32
        assert len(key.signature) == 64
        assert key.expires_at == datetime(2023, 11, 27, 16, 4, 54, 798109, tzinfo=UTC)
        assert api.routes == ["POST /resources/stores/secret/client-key"]
        assert api.requests[0].content == b""

    async def test_client_key_also_read_from_the_documented_field_name(self, make_api: Any) -> None:
        body = {"client_key": ZERO_KEY, "signature": "A" * 86 + "==", "expires_at": "2026-11-28T10:10:00Z"}
        api = make_api(lambda request: httpx.Response(200, json=body))
        assert (await api.client.create_client_key()).public_key == bytes(32)

    @pytest.mark.parametrize(
        "public_key",
        [pytest.param("not base64!", id="not-base64"), pytest.param("AAAA", id="wrong-length")],
    )
    async def test_malformed_client_key_is_refused(self, make_api: Any, public_key: str) -> None:
        body = {"public_key": public_key, "signature": "A" * 86 + "==", "expires_at": "2026-11-28T10:10:00Z"}
        api = make_api(lambda request: httpx.Response(200, json=body))
        with pytest.raises(UnexpectedResponseError, match="public_key"):
            await api.client.create_client_key()

    async def test_get_signing_key(self, make_api: Any) -> None:
        api = make_api(lambda request: httpx.Response(200, json={"signing_key": ZERO_KEY}))
        assert await api.client.get_signing_key() == bytes(32)
        assert api.routes == ["GET /resources/stores/secret/signing-key"]


class TestSecrets:
    @pytest.mark.parametrize(
        ("method", "call"),
        [
            ("POST", "create_secret"),
            ("PUT", "put_secret"),
            ("PATCH", "recreate_secret"),
        ],
    )
    async def test_writes_go_to_the_collection_with_the_name_in_the_body(
        self, make_api: Any, method: str, call: str
    ) -> None:
        api = make_api(lambda request: httpx.Response(200, json=secret_json("API_KEY", recreated=True)))
        secret = await getattr(api.client, call)("s1", "API_KEY", SEALED)
        assert secret == Secret(name="API_KEY", digest="ZGlnZXN0", created_at=T0, recreated=True)
        assert api.routes == [f"{method} /resources/stores/secret/s1/secrets"]
        assert json.loads(api.requests[0].content) == {
            "name": "API_KEY",
            "secret": SEALED.secret,
            "client_key": SEALED.client_key,
        }

    async def test_recreated_defaults_to_false(self, make_api: Any) -> None:
        api = make_api(lambda request: httpx.Response(200, json=secret_json("API_KEY")))
        assert (await api.client.get_secret("s1", "API_KEY")).recreated is False
        assert api.routes == ["GET /resources/stores/secret/s1/secrets/API_KEY"]

    async def test_delete_secret(self, make_api: Any) -> None:
        api = make_api(lambda request: httpx.Response(204))
        assert await api.client.delete_secret("s1", "API_KEY") is None
        assert api.routes == ["DELETE /resources/stores/secret/s1/secrets/API_KEY"]

    async def test_list_secrets_follows_cursors(self, make_api: Any) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.params.get("cursor") is None:
                return paged([secret_json("A"), secret_json("B")], 2, "next")
            return paged([secret_json("C")], 2)

        api = make_api(handler)
        names = [secret.name async for secret in api.client.list_secrets("s1", limit=2)]
        assert names == ["A", "B", "C"]
        assert api.routes == ["GET /resources/stores/secret/s1/secrets"] * 2

    async def test_list_secrets_page(self, make_api: Any) -> None:
        api = make_api(lambda request: paged([secret_json("A")], 10))
        page = await api.client.list_secrets_page("s1", cursor="abc", limit=10)
        assert page.data[0].name == "A"
        assert page.next_cursor is None
        assert dict(api.requests[0].url.params) == {"cursor": "abc", "limit": "10"}

    async def test_an_empty_name_is_refused(self, make_api: Any) -> None:
        api = make_api(lambda request: httpx.Response(200, json=secret_json("x")))
        with pytest.raises(ValueError, match="name"):
            await api.client.put_secret("s1", "", SEALED)
        assert api.requests == []


class TestParseTime:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2023-11-27T15:54:54Z", datetime(2023, 11, 27, 15, 54, 54, tzinfo=UTC)),
            ("2023-11-27T16:04:54.798109645Z", datetime(2023, 11, 27, 16, 4, 54, 798109, tzinfo=UTC)),
            ("2023-11-27T16:04:54.5Z", datetime(2023, 11, 27, 16, 4, 54, 500000, tzinfo=UTC)),
            ("2023-11-27T17:04:54+01:00", datetime(2023, 11, 27, 16, 4, 54, tzinfo=UTC)),
            ("2023-11-27t16:04:54z", datetime(2023, 11, 27, 16, 4, 54, tzinfo=UTC)),
        ],
    )
    def test_rfc3339(self, text: str, expected: datetime) -> None:
        parsed = parse_time(text)
        assert parsed == expected
        assert parsed.utcoffset() == timedelta(0)
        assert parsed.tzinfo is UTC

    @pytest.mark.parametrize("text", ["2023-11-27", "2023-11-27T15:54:54", "yesterday", "2023-11-27 15:54:54Z"])
    def test_refuses_what_is_not_rfc3339(self, text: str) -> None:
        with pytest.raises(ValueError, match="RFC 3339"):
            parse_time(text)


async def test_find_stores_follows_pages_when_the_name_filter_is_ignored() -> None:
    pages = {
        None: {
            "data": [{"id": "a" * 22, "name": "other", "created_at": "2026-11-28T10:00:00Z"}],
            "meta": {"limit": 1, "next_cursor": "c1"},
        },
        "c1": {
            "data": [{"id": "b" * 22, "name": "wanted", "created_at": "2026-11-28T10:00:00Z"}],
            "meta": {"limit": 1},
        },
    }

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["name"] == "wanted"
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    async with FastlyClient("token", transport=httpx.MockTransport(answer)) as client:
        found = await client.find_stores("wanted")
    assert [store.id for store in found] == ["b" * 22]
