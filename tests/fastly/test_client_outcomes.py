"""What the client says when it cannot know, or when Fastly refuses a client key: unknown outcomes for creates,
ClientKeyRejectedError, and the token's own record (GET /tokens/self)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fastly_secret_store_operator.fastly import (
    AlreadyExistsError,
    ClientKeyRejectedError,
    FastlyClient,
    InvalidRequestError,
    OutcomeUnknownError,
    SealedValue,
    ServerUnavailableError,
    TokenInfo,
    UnauthorizedError,
    UnexpectedResponseError,
)

STORE = {"id": "7nLoGzCcs1ZbDD8BaX3jKR", "name": "checkout", "created_at": "2026-11-28T10:00:00Z"}
SECRET = {"name": "KEY", "digest": "ZGlnZXN0", "created_at": "2026-11-28T10:00:00Z"}
SEALED = SealedValue(secret="U0VBTEVE", client_key="2iMPR4MnTZ3vC2PjShB6PQM8wLb2ckfUOLKwex5sYUc=")
TOKEN_SELF = {
    "id": "tok1",
    "user_id": "user1",
    "customer_id": "acct1",
    "name": "ci",
    "created_at": "2026-01-01T00:00:00Z",
    "last_used_at": None,
    "expires_at": "2026-12-01T12:00:00Z",
    "scope": "global purge_all",
    "scopes": ["global", "purge_all"],
    "services": ["svc1", "svc2"],
}

Call = Callable[[FastlyClient], Awaitable[object]]
CREATES: list[Any] = [
    pytest.param(lambda client: client.create_store("checkout"), STORE, id="create-store"),
    pytest.param(lambda client: client.create_secret("s1", "KEY", SEALED), SECRET, id="create-secret"),
]


def always(response: httpx.Response | type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(response, httpx.Response):
            return response
        raise response("simulated", request=request)

    return handle


class TestUnknownOutcomes:
    @pytest.mark.parametrize("lost", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.WriteTimeout])
    @pytest.mark.parametrize(("call", "body"), CREATES)
    async def test_a_lost_answer_to_a_create_is_an_unknown_outcome_sent_once(
        self, make_api: Any, call: Call, body: object, lost: type[Exception], token: str
    ) -> None:
        api = make_api(always(lost))
        with pytest.raises(OutcomeUnknownError) as caught:
            await call(api.client)
        assert len(api.requests) == 1  # never repeated blindly
        assert isinstance(caught.value, ServerUnavailableError)  # still "try later", never a refusal
        assert "may have been carried out" in str(caught.value)
        assert token not in str(caught.value) + repr(caught.value)

    @pytest.mark.parametrize(
        "answer",
        [
            pytest.param(httpx.Response(201, text="<html><body>Created</body></html>"), id="not-json"),
            pytest.param(httpx.Response(201, json={"id": "7nLoGzCcs1ZbDD8BaX3jKR", "name": "x"}), id="no-created-at"),
            pytest.param(httpx.Response(201, json={"name": "x", "created_at": "2026-11-28T10:00:00Z"}), id="no-id"),
        ],
    )
    async def test_an_unreadable_created_store_is_an_unknown_outcome(
        self, make_api: Any, answer: httpx.Response
    ) -> None:
        api = make_api(always(answer))
        with pytest.raises(OutcomeUnknownError) as caught:
            await api.client.create_store("checkout")
        assert not isinstance(caught.value, InvalidRequestError | UnexpectedResponseError)
        assert len(api.requests) == 1

    async def test_an_unreadable_created_secret_is_an_unknown_outcome(self, make_api: Any) -> None:
        api = make_api(always(httpx.Response(200, json={"name": "KEY"})))
        with pytest.raises(OutcomeUnknownError):
            await api.client.create_secret("s1", "KEY", SEALED)

    async def test_idempotent_requests_keep_their_errors(self, make_api: Any) -> None:
        unreadable = make_api(always(httpx.Response(200, json={"name": "KEY"})))
        with pytest.raises(UnexpectedResponseError):
            await unreadable.client.put_secret("s1", "KEY", SEALED)
        with pytest.raises(UnexpectedResponseError):
            await unreadable.client.get_store("s1")
        lost = make_api(always(httpx.ReadTimeout))
        with pytest.raises(ServerUnavailableError) as caught:
            await lost.client.get_store("s1")
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert len(lost.requests) == 4  # retried, as reads always were

    async def test_a_create_that_never_left_is_not_unknown(self, make_api: Any) -> None:
        api = make_api(always(httpx.ConnectError))
        with pytest.raises(ServerUnavailableError) as caught:
            await api.client.create_store("checkout")
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert len(api.requests) == 4  # safe to retry: nothing was sent


class TestClientKeyRefusals:
    @pytest.mark.parametrize(
        "body",
        [
            {"msg": "Bad request", "detail": "client key expired"},
            {"msg": "Bad Request", "detail": "unknown client key; fetch one from POST /resources/..."},
            {"msg": "Bad Request", "detail": "client_key: expired; fetch a new one"},
            {"errors": [{"title": "Invalid client key", "detail": "not found"}]},
        ],
    )
    async def test_a_refused_client_key_is_its_own_error(self, make_api: Any, body: dict[str, Any]) -> None:
        api = make_api(always(httpx.Response(400, json=body)))
        with pytest.raises(ClientKeyRejectedError) as caught:
            await api.client.put_secret("s1", "KEY", SEALED)
        assert isinstance(caught.value, InvalidRequestError)
        assert caught.value.status == 400

    @pytest.mark.parametrize(
        ("body", "error"),
        [
            ({"msg": "Bad Request", "detail": "injected fault"}, InvalidRequestError),
            (
                {"msg": "Bad Request", "detail": "secret: cannot be opened with the given client_key"},
                InvalidRequestError,
            ),
            ({"msg": "Bad Request", "detail": "duplicate: name"}, AlreadyExistsError),
        ],
    )
    async def test_other_refusals_are_not_client_key_refusals(
        self, make_api: Any, body: dict[str, Any], error: type[Exception]
    ) -> None:
        api = make_api(always(httpx.Response(400, json=body)))
        with pytest.raises(error) as caught:
            await api.client.put_secret("s1", "KEY", SEALED)
        assert not isinstance(caught.value, ClientKeyRejectedError)


class TestTokenSelf:
    async def test_reads_the_tokens_record(self, make_api: Any) -> None:
        api = make_api(always(httpx.Response(200, json=TOKEN_SELF)))
        info = await api.client.get_token_self()
        assert info == TokenInfo(
            id="tok1",
            customer_id="acct1",
            user_id="user1",
            expires_at=datetime(2026, 12, 1, 12, tzinfo=UTC),
            scope="global purge_all",
            services=("svc1", "svc2"),
        )
        assert api.routes == ["GET /tokens/self"]
        assert api.requests[0].headers["Fastly-Key"]  # authenticated like every request

    async def test_a_token_that_never_expires(self, make_api: Any) -> None:
        body = TOKEN_SELF | {"expires_at": None, "services": [], "scope": None}
        info = await (make_api(always(httpx.Response(200, json=body)))).client.get_token_self()
        assert (info.expires_at, info.services, info.scope) == (None, (), "global purge_all")

    @pytest.mark.parametrize(
        "change",
        [
            {"customer_id": None},
            {"customer_id": ""},
            {"id": 7},
            {"expires_at": "next week"},
            {"services": "svc1"},
            {"services": [1]},
        ],
    )
    async def test_a_record_that_makes_no_sense_is_refused(self, make_api: Any, change: dict[str, Any]) -> None:
        api = make_api(always(httpx.Response(200, json=TOKEN_SELF | change)))
        with pytest.raises(UnexpectedResponseError):
            await api.client.get_token_self()

    async def test_is_retried_like_every_read(self, make_api: Any) -> None:
        answers = iter([httpx.Response(503), httpx.Response(200, json=TOKEN_SELF)])
        api = make_api(lambda request: next(answers))
        assert (await api.client.get_token_self()).customer_id == "acct1"
        assert len(api.requests) == 2

    async def test_an_unknown_token_is_unauthorized(self, make_api: Any) -> None:
        body = {"msg": "Provided credentials are missing or invalid"}
        api = make_api(always(httpx.Response(401, json=body)))
        with pytest.raises(UnauthorizedError):
            await api.client.get_token_self()
