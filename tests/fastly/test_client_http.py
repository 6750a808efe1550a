"""The HTTP contract: headers, endpoints, timeouts, retries, rate limits and the on_response hook."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from fastly_secret_store_operator import __version__
from fastly_secret_store_operator.fastly import (
    FastlyClient,
    FastlyError,
    RateLimitedError,
    RequestInfo,
    RetryPolicy,
    SealedValue,
    ServerUnavailableError,
)

STORE = {"id": "7nLoGzCcs1ZbDD8BaX3jKR", "name": "checkout", "created_at": "2026-11-28T10:00:00Z"}
SECRET = {
    "name": "STRIPE_KEY",
    "digest": "tNM8mkJTjQGBtkHQ3RRn+dzLbh9iZfJ02GVz35HY9iA=",
    "created_at": "2026-11-28T10:00:00Z",
}
CLIENT_KEY = {
    "public_key": "2iMPR4MnTZ3vC2PjShB6PQM8wLb2ckfUOLKwex5sYUc=",
    "signature": "xfLzo9i8KTwie/FZID5ZAkPWiCCzbV1T77xUrzuRx3zUvdnF/I6m9Q0WKTKl8qW++NDPhrc/1wmBvILV7EmdAw==",
    "expires_at": "2023-11-27T16:04:54.798109645Z",
}
SEALED = SealedValue(secret="c2VhbGVkLWNpcGhlcnRleHQ=", client_key=CLIENT_KEY["public_key"])


@dataclass
class TlsServer:
    url: str
    ca_file: Path
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    """An HTTPS server on loopback answering every request with STORE, its certificate from a throwaway CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    body = json.dumps(STORE).encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                server.requests.append(head.split(b"\r\n")[0])
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    server = TlsServer(f"https://127.0.0.1:{listener.sockets[0].getsockname()[1]}", ca_file)
    async with listener:
        yield server


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable from the machine running the tests: each test sets the ones it means."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def _unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


def ok(body: object = None, status: int = 200, **headers: str) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def failing(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"msg": "Service Unavailable"}, headers=headers)


# Every write the client can make, with whether repeating it is safe.
WRITES = [
    pytest.param(lambda c: c.create_store("checkout"), STORE, False, id="create_store"),
    pytest.param(lambda c: c.create_secret("s1", "K", SEALED), SECRET, False, id="create_secret"),
    pytest.param(lambda c: c.put_secret("s1", "K", SEALED), SECRET, True, id="put_secret"),
    pytest.param(lambda c: c.recreate_secret("s1", "K", SEALED), SECRET, True, id="recreate_secret"),
    pytest.param(lambda c: c.create_client_key(), CLIENT_KEY, True, id="create_client_key"),
    pytest.param(lambda c: c.delete_store("s1"), None, True, id="delete_store"),
    pytest.param(lambda c: c.delete_secret("s1", "K"), None, True, id="delete_secret"),
    pytest.param(lambda c: c.get_store("s1"), STORE, True, id="get_store"),
]


class TestRequests:
    async def test_sends_token_accept_and_user_agent(self, make_api: Any, token: str) -> None:
        api = make_api(lambda request: ok(STORE, 201))
        await api.client.create_store("checkout")
        headers = api.requests[0].headers
        assert headers["Fastly-Key"] == token
        assert headers["Accept"] == "application/json"
        assert headers["User-Agent"].startswith(f"fastly-secret-store-operator/{__version__}")
        assert __version__ != ""

    async def test_sends_json_bodies(self, make_api: Any) -> None:
        api = make_api(lambda request: ok(SECRET))
        await api.client.put_secret("s1", "STRIPE_KEY", SEALED)
        request = api.requests[0]
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.content) == {
            "name": "STRIPE_KEY",
            "secret": SEALED.secret,
            "client_key": SEALED.client_key,
        }

    async def test_one_pooled_connection_serves_all_requests(self, token: str) -> None:
        # A real socket on loopback: every request must reuse the same TCP connection.
        peers: list[tuple[str, int]] = []
        hung_up = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername"))
            body = json.dumps(STORE).encode()
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while await reader.readuntil(b"\r\n\r\n"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                    writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
            writer.close()
            hung_up.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, FastlyClient(token, endpoint=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):
                await client.get_store("7nLoGzCcs1ZbDD8BaX3jKR")
        await hung_up.wait()
        assert len(peers) == 1

    async def test_a_connection_the_server_closed_is_not_reused(self, token: str) -> None:
        # Fastly (or a load balancer) closes idle keep-alive connections. A create is never retried once sent,
        # so sending it into a connection already closed would fail it: it must go out on a fresh one.
        peers: list[tuple[str, int]] = []
        closed = asyncio.Event()

        async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername"))
            await reader.readuntil(b"\r\n\r\n")
            body = json.dumps(STORE).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()  # no Connection: close header: the client learns only from the socket
            await writer.wait_closed()
            closed.set()

        server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, FastlyClient(token, endpoint=f"http://127.0.0.1:{port}") as client:
            await client.get_store("7nLoGzCcs1ZbDD8BaX3jKR")
            await asyncio.wait_for(closed.wait(), 5)
            closed.clear()
            store = await client.create_store("checkout")
        assert store.name == "checkout"
        assert len(peers) == 2

    async def test_concurrent_requests_keep_their_connections_alive(self, token: str) -> None:
        # 40 requests at once need 40 connections; the next 40 must reuse them all, not open new ones. (One
        # httpcore pool closes *every* idle connection while it holds more than its keep-alive limit.)
        at_once = 40
        connections = 0
        waiting: list[asyncio.StreamWriter] = []
        body = json.dumps(STORE).encode()
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while await reader.readuntil(b"\r\n\r\n"):
                    waiting.append(writer)
                    if len(waiting) == at_once:  # every request is in: answer them all
                        for held in waiting:
                            held.write(answer)
                        waiting.clear()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, FastlyClient(token, endpoint=f"http://127.0.0.1:{port}") as client:
            for _ in range(2):
                stores = await asyncio.gather(*(client.get_store(f"s{n}") for n in range(at_once)))
                assert {store.name for store in stores} == {"checkout"}
        assert connections == at_once

    async def test_a_create_is_retried_when_the_connection_is_refused(self, token: str) -> None:
        # Refused means nothing was sent, so even a create may be tried again.
        seen: list[RequestInfo] = []
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        port = await _unused_port()
        client = FastlyClient(token, endpoint=f"http://127.0.0.1:{port}", on_response=seen.append, sleep=sleep)
        async with client:
            with pytest.raises(ServerUnavailableError, match="ConnectError") as caught:
                await client.create_store("checkout")
        assert [info.status for info in seen] == [None] * RetryPolicy().attempts
        assert len(slept) == RetryPolicy().attempts - 1
        assert token not in str(caught.value) + repr(caught.value)

    @pytest.mark.parametrize(
        "configured",
        [pytest.param(2.5, id="float"), pytest.param(httpx.Timeout(1.0, connect=3.0), id="Timeout")],
    )
    async def test_timeout_is_configurable(self, make_api: Any, configured: float | httpx.Timeout) -> None:
        api = make_api(lambda request: ok(STORE), timeout=configured)
        await api.client.get_store("s1")
        expected = configured if isinstance(configured, httpx.Timeout) else httpx.Timeout(configured)
        assert api.requests[0].extensions["timeout"] == expected.as_dict()

    async def test_timeout_applies_on_the_wire(self, token: str) -> None:
        hung_up = asyncio.Event()

        async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # returns once the client gives up and closes the connection
            writer.close()
            hung_up.set()

        server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = FastlyClient(token, endpoint=f"http://127.0.0.1:{port}", timeout=0.05, retry=RetryPolicy(attempts=1))
        async with server, client:
            with pytest.raises(ServerUnavailableError, match="ReadTimeout"):
                await client.get_store("s1")
        await hung_up.wait()

    async def test_redirects_are_not_followed(self, make_api: Any) -> None:
        # Following one would hand the token to wherever the Location points.
        api = make_api(lambda request: httpx.Response(302, headers={"Location": "https://example.com/"}))
        with pytest.raises(FastlyError) as caught:
            await api.client.get_store("s1")
        assert caught.value.status == 302
        assert len(api.requests) == 1

    async def test_path_values_are_escaped(self, make_api: Any) -> None:
        api = make_api(lambda request: ok(SECRET))
        await api.client.get_secret("a/b", "c?d")
        assert api.requests[0].url.raw_path == b"/resources/stores/secret/a%2Fb/secrets/c%3Fd"

    @pytest.mark.parametrize("name", ["", ".", ".."])
    async def test_path_values_that_would_change_the_route_are_refused(self, make_api: Any, name: str) -> None:
        # DELETE .../secrets/.. normalises to DELETE of the whole store.
        api = make_api(lambda request: ok())
        with pytest.raises(ValueError, match="cannot be used"):
            await api.client.delete_secret("s1", name)
        with pytest.raises(ValueError, match="cannot be used"):
            await api.client.delete_store(name)
        assert api.requests == []


class TestEndpoint:
    @pytest.mark.parametrize(
        "endpoint",
        [
            "https://api.fastly.com",
            "https://fastly.example.com:8443/prefix",
            "http://127.0.0.1:8790",
            "http://127.9.8.7",
            "http://[::1]:8790",
            "http://localhost:8790",
        ],
    )
    async def test_accepts_https_and_loopback_http(self, endpoint: str, token: str) -> None:
        async with FastlyClient(token, endpoint=endpoint):
            pass

    @pytest.mark.parametrize(
        "endpoint",
        [
            "http://api.fastly.com",
            "http://10.0.0.1:8790",
            "http://127.0.0.1.nip.io",
            "http://[::2]",
            "ftp://127.0.0.1",
            "api.fastly.com",
        ],
    )
    def test_refuses_plain_http_elsewhere(self, endpoint: str, token: str) -> None:
        with pytest.raises(ValueError, match=r"must be an https:// URL"):
            FastlyClient(token, endpoint=endpoint)

    async def test_tls_certificates_are_verified(self, token: str, tls_server: TlsServer) -> None:
        # The server's certificate comes from a CA nobody trusts: the client must refuse it, before any request.
        client = FastlyClient(token, endpoint=tls_server.url, retry=RetryPolicy(attempts=1))
        async with client:
            with pytest.raises(ServerUnavailableError, match="ConnectError"):
                await client.get_store("s1")
        assert tls_server.requests == []

    async def test_https_to_a_trusted_server_works(
        self, token: str, tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # SSL_CERT_FILE names the CA bundle (a private CA, a TLS-inspecting proxy's): trust comes only from there.
        monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.ca_file))
        async with FastlyClient(token, endpoint=tls_server.url) as client:
            store = await client.get_store("7nLoGzCcs1ZbDD8BaX3jKR")
            await client.get_store("7nLoGzCcs1ZbDD8BaX3jKR")
        assert store.name == "checkout"
        assert tls_server.requests == [b"GET /resources/stores/secret/7nLoGzCcs1ZbDD8BaX3jKR HTTP/1.1"] * 2
        assert tls_server.connections == 1  # kept alive

    @pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "all_proxy"])
    async def test_proxy_from_the_environment_is_used(
        self, token: str, no_proxy_env: pytest.MonkeyPatch, variable: str
    ) -> None:
        heads: list[bytes] = []

        async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            body = json.dumps(STORE).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        # Credentials in the proxy URL go to the proxy (Proxy-Authorization), never to Fastly.
        no_proxy_env.setenv(variable, f"http://ops:s3cret@127.0.0.1:{server.sockets[0].getsockname()[1]}")
        async with server, FastlyClient(token, endpoint="http://127.0.0.1:9") as client:
            await client.get_store("s1")
        assert [head.split(b"\r\n")[0] for head in heads] == [
            b"GET http://127.0.0.1:9/resources/stores/secret/s1 HTTP/1.1"
        ]
        assert b"Proxy-Authorization: Basic " + base64.b64encode(b"ops:s3cret") + b"\r\n" in heads[0]

        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        async with FastlyClient(token, endpoint="http://127.0.0.1:9", retry=RetryPolicy(attempts=1)) as client:
            with pytest.raises(ServerUnavailableError, match="ConnectError"):
                await client.get_store("s1")  # straight to port 9, where nothing listens
        assert len(heads) == 1

    async def test_https_through_a_proxy_is_tunnelled_and_still_verified(
        self, token: str, tls_server: TlsServer, no_proxy_env: pytest.MonkeyPatch
    ) -> None:
        # The proxy sees only CONNECT host:port; the certificate is checked end to end, through the tunnel.
        connects: list[bytes] = []
        tunnels_closed = asyncio.Semaphore(0)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request_line = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0]
            connects.append(request_line)
            host, port = request_line.split()[1].decode().rsplit(":", 1)
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
            tunnels_closed.release()

        server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        no_proxy_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        async with server:
            no_proxy_env.setenv("SSL_CERT_FILE", str(tls_server.ca_file))
            async with FastlyClient(token, endpoint=tls_server.url) as client:
                store = await client.get_store("7nLoGzCcs1ZbDD8BaX3jKR")
            await tunnels_closed.acquire()
            assert store.name == "checkout"
            assert connects == [b"CONNECT " + tls_server.url.removeprefix("https://").encode() + b" HTTP/1.1"]
            assert tls_server.requests == [b"GET /resources/stores/secret/7nLoGzCcs1ZbDD8BaX3jKR HTTP/1.1"]

            no_proxy_env.delenv("SSL_CERT_FILE")  # the throwaway CA is no longer trusted
            async with FastlyClient(token, endpoint=tls_server.url, retry=RetryPolicy(attempts=1)) as client:
                with pytest.raises(ServerUnavailableError, match="ConnectError"):
                    await client.get_store("7nLoGzCcs1ZbDD8BaX3jKR")
            await tunnels_closed.acquire()
        assert len(connects) == 2
        assert len(tls_server.requests) == 1  # nothing was sent over the unverified connection

    @pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to hash the CA")
    async def test_ssl_cert_dir_names_the_trusted_cas(
        self, token: str, tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A directory of CA certificates by subject hash (as c_rehash / update-ca-certificates lay it out).
        openssl = await asyncio.create_subprocess_exec(
            "openssl", "x509", "-hash", "-noout", "-in", str(tls_server.ca_file), stdout=asyncio.subprocess.PIPE
        )
        output, _ = await openssl.communicate()
        assert openssl.returncode == 0
        subject_hash = output.decode().strip()
        ca_dir = tmp_path / "certs"
        ca_dir.mkdir()
        (ca_dir / f"{subject_hash}.0").write_bytes(tls_server.ca_file.read_bytes())
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.setenv("SSL_CERT_DIR", str(ca_dir))
        async with FastlyClient(token, endpoint=tls_server.url) as client:
            store = await client.get_store("7nLoGzCcs1ZbDD8BaX3jKR")
        assert store.name == "checkout"

    async def test_endpoint_path_prefix_is_kept(self, make_api: Any) -> None:
        api = make_api(lambda request: ok(STORE), endpoint="http://127.0.0.1:8790/fastly/")
        await api.client.get_store("s1")
        assert api.requests[0].url.path == "/fastly/resources/stores/secret/s1"

    @pytest.mark.parametrize("bad", ["", "   ", "tok\nen", "tökën"])
    def test_refuses_unusable_tokens(self, bad: str) -> None:
        with pytest.raises(ValueError, match="token"):
            FastlyClient(bad)


class TestRetries:
    async def test_idempotent_request_retries_5xx_with_backoff(self, make_api: Any, fake_time: Any) -> None:
        api = make_api(_script(failing(503), failing(502), ok(STORE)))
        store = await api.client.get_store("s1")
        assert store.id == STORE["id"]
        assert len(api.requests) == 3
        assert fake_time.sleeps == [0.2, 0.4]

    async def test_gives_up_after_the_policy_attempts(self, make_api: Any, fake_time: Any) -> None:
        api = make_api(_script(failing(500)), retry=RetryPolicy(attempts=6, base_delay=1.0, max_delay=3.0))
        with pytest.raises(ServerUnavailableError) as caught:
            await api.client.get_store("s1")
        assert caught.value.status == 500
        assert len(api.requests) == 6
        assert fake_time.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]

    def test_backoff_is_jittered_within_half_to_full_delay(self) -> None:
        policy = RetryPolicy(base_delay=0.2, max_delay=5.0)
        assert policy.backoff(3, jitter=0.0) == pytest.approx(0.4)
        assert policy.backoff(3, jitter=1.0) == pytest.approx(0.8)
        assert policy.backoff(10, jitter=1.0) == pytest.approx(5.0)

    async def test_jitter_source_is_used(self, make_api: Any, fake_time: Any) -> None:
        api = make_api(_script(failing(503), ok(STORE)), jitter=lambda: 0.0)
        await api.client.get_store("s1")
        assert fake_time.sleeps == [pytest.approx(0.1)]

    def test_policy_needs_at_least_one_attempt(self) -> None:
        with pytest.raises(ValueError, match="attempts"):
            RetryPolicy(attempts=0)

    @pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
    async def test_transport_errors_are_retried_then_reported_as_unavailable(
        self, make_api: Any, error: type[httpx.TransportError], token: str
    ) -> None:
        api = make_api(_script(error))
        with pytest.raises(ServerUnavailableError) as caught:
            await api.client.get_store("s1")
        assert len(api.requests) == 4
        assert caught.value.status is None
        assert error.__name__ in str(caught.value)
        assert token not in str(caught.value) + repr(caught.value)

    @pytest.mark.parametrize(
        "failure", [pytest.param(failing(503), id="503"), pytest.param(httpx.ReadTimeout, id="lost-answer")]
    )
    @pytest.mark.parametrize(("call", "body", "idempotent"), WRITES)
    async def test_failures_that_may_have_reached_fastly_are_retried_only_when_repeating_is_safe(
        self, make_api: Any, call: Any, body: object, idempotent: bool, failure: Any
    ) -> None:
        api = make_api(_script(failure, ok(body, 201 if body is STORE else 200)))
        if idempotent:
            await call(api.client)
            assert len(api.requests) == 2
        else:
            with pytest.raises(ServerUnavailableError):
                await call(api.client)
            assert len(api.requests) == 1

    async def test_post_is_retried_when_the_connection_never_opened(self, make_api: Any) -> None:
        # Nothing reached Fastly, so a second try cannot create a duplicate.
        api = make_api(_script(httpx.ConnectError, ok(STORE, 201)))
        assert (await api.client.create_store("checkout")).id == STORE["id"]
        assert len(api.requests) == 2

    async def test_4xx_is_not_retried(self, make_api: Any) -> None:
        api = make_api(_script(httpx.Response(404, json={"msg": "Record not found"})))
        with pytest.raises(FastlyError):
            await api.client.get_store("s1")
        assert len(api.requests) == 1


class TestRateLimits:
    async def test_waits_until_fastly_ratelimit_reset_when_it_is_near(self, make_api: Any, fake_time: Any) -> None:
        api = make_api(_script(failing(429, **{"Fastly-RateLimit-Reset": fake_time.epoch(7)}), ok(STORE, 201)))
        await api.client.create_store("checkout")  # a refused request is safe to repeat, even a POST
        assert fake_time.sleeps == [7.0]
        assert len(api.requests) == 2

    async def test_waits_for_retry_after_seconds(self, make_api: Any, fake_time: Any) -> None:
        api = make_api(_script(failing(429, **{"Retry-After": "3"}), ok(STORE)))
        await api.client.get_store("s1")
        assert fake_time.sleeps == [3.0]

    async def test_waits_for_retry_after_http_date(self, make_api: Any, fake_time: Any) -> None:
        api = make_api(_script(failing(429, **{"Retry-After": "Sat, 28 Nov 2026 10:00:04 GMT"}), ok(STORE)))
        await api.client.get_store("s1")
        assert fake_time.sleeps == [4.0]

    async def test_raises_when_the_reset_is_too_far(self, make_api: Any, fake_time: Any) -> None:
        reset = fake_time.epoch(1800)
        api = make_api(_script(failing(429, **{"Fastly-RateLimit-Reset": reset, "Fastly-RateLimit-Remaining": "0"})))
        with pytest.raises(RateLimitedError) as caught:
            await api.client.put_secret("s1", "K", SEALED)
        assert caught.value.status == 429
        assert caught.value.reset_at == datetime.fromtimestamp(int(reset), UTC)
        assert fake_time.sleeps == []
        assert len(api.requests) == 1

    async def test_raises_without_a_reset_time(self, make_api: Any, fake_time: Any) -> None:
        api = make_api(_script(failing(429)))
        with pytest.raises(RateLimitedError) as caught:
            await api.client.get_store("s1")
        assert caught.value.reset_at is None
        assert fake_time.sleeps == []

    async def test_waiting_is_bounded_by_attempts(self, make_api: Any, fake_time: Any) -> None:
        api = make_api(_script(failing(429, **{"Retry-After": "1"})), retry=RetryPolicy(attempts=3))
        with pytest.raises(RateLimitedError):
            await api.client.get_store("s1")
        assert len(api.requests) == 3
        assert fake_time.sleeps == [1.0, 1.0]

    async def test_rate_limit_keeps_the_last_seen_headers(self, make_api: Any, fake_time: Any) -> None:
        reset = fake_time.epoch(1200)
        headers = {"Fastly-RateLimit-Remaining": "997", "Fastly-RateLimit-Reset": reset}
        api = make_api(_script(ok(STORE, 201, **headers), ok(STORE)))
        assert api.client.rate_limit.remaining is None
        await api.client.create_store("checkout")
        await api.client.get_store("s1")  # reads carry no rate-limit headers: keep what the write said
        assert api.client.rate_limit.remaining == 997
        assert api.client.rate_limit.reset_at == datetime.fromtimestamp(int(reset), UTC)


class TestOnResponse:
    async def test_reports_every_attempt_with_a_route_template(self, make_api: Any, fake_time: Any) -> None:
        seen: list[RequestInfo] = []
        answers = _script(httpx.ConnectError, failing(503), ok(SECRET, **{"Fastly-RateLimit-Remaining": "42"}))
        api = make_api(answers, on_response=seen.append)
        await api.client.put_secret("7nLoGzCcs1ZbDD8BaX3jKR", "STRIPE_KEY", SEALED)
        assert [info.status for info in seen] == [None, 503, 200]
        assert {info.method for info in seen} == {"PUT"}
        assert {info.endpoint for info in seen} == {"PUT /resources/stores/secret/{store_id}/secrets"}
        assert seen[-1].rate_limit.remaining == 42
        assert all(info.elapsed >= 0 for info in seen)

    async def test_route_templates_never_hold_ids_or_names(self, make_api: Any) -> None:
        seen: list[RequestInfo] = []
        api = make_api(lambda request: ok(SECRET), on_response=seen.append)
        await api.client.get_secret("7nLoGzCcs1ZbDD8BaX3jKR", "STRIPE_KEY")
        assert seen[0].endpoint == "GET /resources/stores/secret/{store_id}/secrets/{name}"

    async def test_a_failing_hook_does_not_fail_the_request(self, make_api: Any) -> None:
        def broken(info: RequestInfo) -> None:
            raise RuntimeError("metrics are down")

        api = make_api(lambda request: ok(STORE), on_response=broken)
        assert (await api.client.get_store("s1")).id == STORE["id"]


def _script(*answers: httpx.Response | type[httpx.TransportError]) -> Any:
    """A handler giving ``answers`` in turn (the last repeats); an httpx error class is raised."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, httpx.Response):
            return answer
        raise answer("simulated", request=request)

    return handler
