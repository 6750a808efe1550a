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

from fastly_secret_store_operator.kube.credentials import Credentials
from fastly_secret_store_operator.kube.errors import KubeError, error_for_status

JSON = "application/json"
#: (connect, read) seconds for every call: a silently dropped connection must fail, not hang a sync loop.
REQUEST_TIMEOUT = (5.0, 30.0)
#: Requests in flight at once before the next waits for a connection (every reconcile slot plus the watches).
DEFAULT_CONNECTIONS = 64

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
        self._http = httpx.AsyncClient(
            base_url=credentials.server,
            verify=credentials.ssl_context() if credentials.server.startswith("https:") else True,
            proxy=credentials.proxy,
            trust_env=False,  # the kubeconfig says which proxy, as for kubectl and the kubernetes client
            timeout=httpx.Timeout(REQUEST_TIMEOUT[1], connect=REQUEST_TIMEOUT[0]),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
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
        try:
            response = await self._http.request(
                method,
                path,
                params=dict(query or {}),
                content=content,
                headers=self._headers(accept, content_type if content is not None else None),
                timeout=timeouts if timeouts is not None else httpx.USE_CLIENT_DEFAULT,
                extensions=self._extensions,
            )
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
        request = self._http.build_request(
            "GET",
            path,
            params=dict(query or {}),
            headers=self._headers(accept, None),
            timeout=httpx.Timeout(read_timeout, connect=REQUEST_TIMEOUT[0]),
            extensions=self._extensions,
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as error:
            raise KubeError(None, type(error).__name__) from None
        try:
            if not response.is_success:
                raise error_for_status(response.status_code)
            yield _lines(response)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    try:
        async for line in response.aiter_lines():
            if line:
                yield line
    except httpx.HTTPError as error:
        raise KubeError(None, type(error).__name__) from None
