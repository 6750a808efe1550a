"""Errors: every Fastly body shape and status becomes the right FastlyError; secrets never leak into them."""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from fastly_secret_store_operator.fastly import (
    AlreadyExistsError,
    FastlyClient,
    FastlyError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    SealedValue,
    ServerUnavailableError,
    UnauthorizedError,
    UnexpectedResponseError,
)

SEALED = SealedValue(
    secret="U0VBTEVELUNBTkFSWS1jaXBoZXJ0ZXh0", client_key="2iMPR4MnTZ3vC2PjShB6PQM8wLb2ckfUOLKwex5sYUc="
)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(
            httpx.Response(404, json={"msg": "Record not found"}),
            "Record not found",
            id="msg",
        ),
        pytest.param(
            httpx.Response(400, json={"msg": "Bad Request", "detail": "invalid name"}),
            "Bad Request (invalid name)",
            id="msg-detail",
        ),
        pytest.param(
            httpx.Response(400, json={"errors": [{"title": "Invalid value", "detail": "name has a space"}]}),
            "Invalid value (name has a space)",
            id="errors-array",
        ),
        pytest.param(
            httpx.Response(
                422,
                content=b'{"type":"about:blank","title":"Unprocessable","status":422,"detail":"bad base64"}',
                headers={"Content-Type": "application/problem+json"},
            ),
            "Unprocessable (bad base64)",
            id="problem+json",
        ),
        pytest.param(
            httpx.Response(502, text="<html><body>Bad   gateway</body></html>"),
            "Bad Gateway (Bad gateway)",
            id="html",
        ),
        pytest.param(httpx.Response(503), "Service Unavailable", id="empty"),
        pytest.param(
            httpx.Response(400, json=["not", "an", "object"]), 'Bad Request (["not","an","object"])', id="json-array"
        ),
    ],
)
async def test_messages_come_from_every_body_shape(make_api: Any, response: httpx.Response, expected: str) -> None:
    api = make_api(lambda request: response)
    with pytest.raises(FastlyError) as caught:
        await api.client.get_store("s1")
    assert str(caught.value) == expected
    assert caught.value.status == response.status_code


async def test_long_bodies_are_cut(make_api: Any) -> None:
    api = make_api(lambda request: httpx.Response(400, text="x" * 10_000))
    with pytest.raises(InvalidRequestError) as caught:
        await api.client.get_store("s1")
    assert len(str(caught.value)) <= 300


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"msg": "Provided credentials are missing or invalid"}, UnauthorizedError),
        (403, {"msg": "Forbidden"}, UnauthorizedError),
        (404, {"msg": "Record not found"}, NotFoundError),
        (409, {"msg": "store with name 'x' already exists"}, AlreadyExistsError),
        (400, {"msg": "Bad Request", "detail": "duplicate: name"}, AlreadyExistsError),
        (400, {"msg": "Duplicate secret"}, AlreadyExistsError),
        (400, {"msg": "Bad Request", "detail": "invalid name"}, InvalidRequestError),
        (422, {"msg": "Unprocessable"}, InvalidRequestError),
        (413, {"msg": "Too large"}, InvalidRequestError),
        (429, {"msg": "Too many requests"}, RateLimitedError),
        (500, {"msg": "Internal"}, ServerUnavailableError),
    ],
)
async def test_status_picks_the_error_class(make_api: Any, status: int, body: object, error: type[FastlyError]) -> None:
    api = make_api(lambda request: httpx.Response(status, json=body))
    with pytest.raises(FastlyError) as caught:
        await api.client.create_secret("s1", "K", SEALED)  # a POST: not retried, so 5xx surfaces at once
    assert type(caught.value) is error


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>oops</html>", id="not-json"),
        pytest.param(b'{"id": 1, "name": "x", "created_at": "2026-11-28T10:00:00Z"}', id="wrong-type"),
        pytest.param(b'{"id": "a", "name": "x", "created_at": "yesterday"}', id="bad-time"),
        pytest.param(b'{"id": "a", "name": "x"}', id="missing-field"),
    ],
)
async def test_unreadable_success_bodies_raise_unexpected_response(make_api: Any, body: bytes) -> None:
    api = make_api(lambda request: httpx.Response(200, content=body))
    with pytest.raises(UnexpectedResponseError):
        await api.client.get_store("s1")


def test_error_str_and_repr() -> None:
    error = NotFoundError("Record not found", status=404, detail="store s1")
    assert str(error) == "Record not found (store s1)"
    assert repr(error) == "NotFoundError(status=404, msg='Record not found', detail='store s1')"
    assert str(NotFoundError("Record not found", status=404)) == "Record not found"


class TestSecretsNeverLeak:
    """Token and sealed value stay out of errors, reprs and DEBUG logs, even when Fastly echoes them."""

    async def test_echoed_secrets_are_redacted_from_errors(self, make_api: Any, token: str) -> None:
        def echo(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                400,
                json={"msg": f"bad key {request.headers['Fastly-Key']}", "detail": request.content.decode()},
            )

        api = make_api(echo)
        with pytest.raises(InvalidRequestError) as caught:
            await api.client.put_secret("s1", "K", SEALED)
        shown = f"{caught.value} {caught.value!r} {caught.value.msg} {caught.value.detail} {caught.value.args}"
        assert token not in shown
        assert SEALED.secret not in shown
        assert "<redacted>" in shown

    async def test_a_secret_cut_by_truncation_leaves_no_prefix(self, make_api: Any, token: str) -> None:
        api = make_api(lambda request: httpx.Response(400, text="x" * 290 + token))
        with pytest.raises(InvalidRequestError) as caught:
            await api.client.get_store("s1")
        assert token[:8] not in str(caught.value)

    async def test_nothing_secret_reaches_debug_logs(
        self, make_api: Any, token: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        answers = iter(
            [
                httpx.Response(503, json={"msg": token}),
                httpx.Response(200, json={"name": "K", "digest": "d", "created_at": "2026-11-28T10:00:00Z"}),
                httpx.Response(400, json={"msg": token, "detail": SEALED.secret}),
            ]
        )

        def handler(request: httpx.Request) -> httpx.Response:
            answer = next(answers, None)
            if answer is None:
                raise httpx.ConnectError(f"refused {request.headers['Fastly-Key']}", request=request)
            return answer

        api = make_api(handler, on_response=lambda info: None)
        with caplog.at_level(logging.DEBUG):
            await api.client.put_secret("s1", "K", SEALED)
            for _ in range(2):
                with pytest.raises(FastlyError) as caught:
                    await api.client.put_secret("s1", "K", SEALED)
                logging.getLogger("test").exception("logged like an operator would", exc_info=caught.value)
        assert any("PUT /resources/stores/secret/{store_id}/secrets" in line for line in caplog.messages)
        assert token not in caplog.text
        assert SEALED.secret not in caplog.text
        assert token not in repr(api.client)
        assert token not in repr(api.client._connection) + str(vars(api.client))  # nor in what it holds
        assert SEALED.secret not in repr(SEALED)


# A token with every character a server may escape when it echoes it back.
AWKWARD_TOKEN = 'awk/ward"tok+en&<k> 9%Zq'


def echoed_forms(token: str) -> dict[str, str]:
    json_escaped = json.dumps(token)[1:-1]
    return {
        "json": json_escaped,
        "json-slash": json_escaped.replace("/", "\\/"),
        "go": json_escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
        "percent": quote(token, safe=""),
        "percent-lower": re.sub(r"%[0-9A-F]{2}", lambda match: match[0].lower(), quote(token, safe="")),
        "form": quote_plus(token, safe=""),
        "html": html.escape(token),
    }


@pytest.mark.parametrize("form", list(echoed_forms(AWKWARD_TOKEN)))
@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
async def test_a_token_echoed_in_any_escaped_form_is_redacted(form: str, content_type: str) -> None:
    echoed = echoed_forms(AWKWARD_TOKEN)[form]
    if content_type == "application/json":
        # Serialised by hand: the echoed form goes into the JSON text exactly as a server wrote it.
        content = ('{"msg":"Bad Request","detail":"bad key ' + echoed + ' given"}').encode()
    else:
        content = f"<html><body><p>bad key {echoed} given</p></body></html>".encode()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=content, headers={"Content-Type": content_type})

    async with FastlyClient(
        AWKWARD_TOKEN, endpoint="http://127.0.0.1:1", transport=httpx.MockTransport(answer)
    ) as client:
        with pytest.raises(InvalidRequestError) as caught:
            await client.get_store("s1")
    message = str(caught.value) + repr(caught.value)
    assert "bad key" in message  # the rest of the message survives
    assert "given" in message
    assert "ward" not in message, message
    assert "tok" not in message, message


async def test_an_html_error_page_is_reduced_to_its_status_line_and_short_text(make_api: Any, token: str) -> None:
    page = (
        "<!DOCTYPE html><html><head><title>502</title><style>body{color:red}</style>"
        "<script>var x = 1;</script></head><body><h1>Bad&nbsp;Gateway</h1>"
        f"<p>The upstream did not answer for {token}.</p>" + "<div>filler text</div>" * 100 + "</body></html>"
    )
    api = make_api(lambda request: httpx.Response(502, text=page, headers={"Content-Type": "text/html"}))
    with pytest.raises(ServerUnavailableError) as caught:
        await api.client.get_store("s1")
    message = str(caught.value)
    assert message.startswith("Bad Gateway (Bad Gateway The upstream did not answer for <redacted>. filler text")
    assert caught.value.status == 502
    assert caught.value.detail is not None
    assert len(caught.value.detail) <= 200
    for markup in ("<p>", "<div", "<script", "var x", "color:red", "&nbsp;", "<html"):
        assert markup not in message
    assert token not in message
