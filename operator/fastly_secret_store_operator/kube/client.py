"""One async HTTP client for the Kubernetes API, on httpx: every call has timeouts, can be cancelled (a
cancelled call never goes out later: there is no thread to finish it), and names its target by escaped path
segments only."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from fastly_secret_store_operator.fastly.transport import PooledShards
from fastly_secret_store_operator.kube.credentials import Credentials
from fastly_secret_store_operator.kube.errors import KubeError, error_for_status

JSON = "application/json"
#: (connect, read) seconds for every call: a silently dropped connection must fail, not hang a sync loop.
REQUEST_TIMEOUT = (5.0, 30.0)
#: Requests in flight at once before the next waits for a connection (every reconcile slot plus the watches).
DEFAULT_CONNECTIONS = 64
CONNECTIONS_PER_SHARD = 4
#: Watches at once: one per served namespace (or one for all), and room for a reconnect.
STREAM_CONNECTIONS = 64

Query = Mapping[str, str | int]


def json_object(answer: bytes) -> dict[str, Any]:
    """An answer's JSON object; anything else is a failed call (never quoted: it may echo what was sent)."""
    try:
        body = json.loads(answer)
    except ValueError:
        raise KubeError(None, "answer is not JSON") from None
    if not isinstance(body, dict):
        raise KubeError(None, "answer is not a JSON object")
    return body


def api_path(*segments: str) -> str:
    """`/seg/seg/…` with every segment escaped, so no name can add a segment or walk up (`../x` stays one
    segment). Empty, `.` and `..` segments are refused: a client would drop or resolve them before sending."""
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ValueError(f"{segment!r} cannot name anything in a Kubernetes API path")
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


class KubeClient:
    def __init__(self, credentials: Credentials, *, connections: int = DEFAULT_CONNECTIONS) -> None:
        self.credentials = credentials
        self._extensions = {"sni_hostname": credentials.tls_server_name} if credentials.tls_server_name else {}
        ssl_context = credentials.ssl_context() if credentials.server.startswith("https:") else None
        timeout = httpx.Timeout(REQUEST_TIMEOUT[1], connect=REQUEST_TIMEOUT[0])
        self._timeout = timeout.as_dict()
        # Calls go straight to small pools, as the Fastly client's do: httpcore walks every connection of a pool on
        # each request (encode/httpcore#1035), which in one pool of 40 cost a third of the operator's CPU; and an
        # AsyncClient around a transport adds nothing these calls use (no redirects, cookies or auth flows).
        shards = max(1, -(-connections // CONNECTIONS_PER_SHARD))
        self._calls = PooledShards(
            shards=shards, per_shard=CONNECTIONS_PER_SHARD, proxy=credentials.proxy, ssl_context=ssl_context
        )
        self._base = httpx.URL(credentials.server)
        self._prefix = self._base.raw_path.rstrip(b"/")  # a server behind a path (a proxy's /k8s/clusters/x)
        # Watches hold their connection for minutes, streaming: a pool of their own.
        self._streams = httpx.AsyncClient(
            base_url=credentials.server,
            verify=ssl_context if ssl_context is not None else True,
            proxy=credentials.proxy,
            trust_env=False,
            timeout=timeout,
            limits=httpx.Limits(max_connections=STREAM_CONNECTIONS, max_keepalive_connections=STREAM_CONNECTIONS),
        )

    @property
    def server(self) -> str:
        return self.credentials.server

    def _headers(self, accept: str, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        authorization = self.credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str = JSON,
        accept: str = JSON,
        timeouts: httpx.Timeout | None = None,
    ) -> bytes:
        """One call, its answer read in full; raises KubeError on an error status or no answer."""
        content = None if body is None else json.dumps(body).encode()
        request = httpx.Request(
            method,
            self._base.copy_with(raw_path=self._prefix + path.encode()),
            params=dict(query) if query else None,
            content=content,
            headers=self._headers(accept, content_type if content is not None else None),
            extensions={**self._extensions, "timeout": timeouts.as_dict() if timeouts is not None else self._timeout},
        )
        try:
            response = await self._calls.handle_async_request(request)
        except httpx.HTTPError as error:
            raise KubeError(None, type(error).__name__) from None
        if not response.is_success:
            raise error_for_status(response.status_code)
        return response.content

    async def get_json(self, path: str, **options: Any) -> dict[str, Any]:
        return json_object(await self.request("GET", path, **options))

    @contextlib.asynccontextmanager
    async def stream_lines(
        self, path: str, *, query: Query | None = None, accept: str = JSON, read_timeout: float
    ) -> AsyncIterator[AsyncIterator[str]]:
        """A streamed GET (a watch): yields its lines. The error status of the answer raises KubeError before
        any line; so does a stream broken part way. Leaving the block closes the stream."""
        request = self._streams.build_request(
            "GET",
            path,
            params=dict(query or {}),
            headers=self._headers(accept, None),
            timeout=httpx.Timeout(read_timeout, connect=REQUEST_TIMEOUT[0]),
            extensions=self._extensions,
        )
        try:
            response = await self._streams.send(request, stream=True)
        except httpx.HTTPError as error:
            raise KubeError(None, type(error).__name__) from None
        try:
            if not response.is_success:
                raise error_for_status(response.status_code)
            yield _lines(response)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._calls.aclose()
        await self._streams.aclose()


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    try:
        async for line in response.aiter_lines():
            if line:
                yield line
    except httpx.HTTPError as error:
        raise KubeError(None, type(error).__name__) from None
