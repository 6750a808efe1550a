"""The Fastly client's transport: several small public httpcore pools behind one httpx transport.

Built as httpx documents for custom transports (an ``httpx.AsyncBaseTransport`` turning ``httpx.Request`` into a
call to an httpcore pool), from httpcore's public ``AsyncConnectionPool`` and ``AsyncHTTPProxy`` only.
"""

from __future__ import annotations

import ssl
import urllib.request

import httpcore
import httpx

# httpcore's exceptions as the httpx ones callers catch; the more specific first (the timeouts are also
# TimeoutException, the network errors NetworkError).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


class PooledShards(httpx.AsyncBaseTransport):
    """Several small connection pools behind one transport; each request goes to the least busy one.

    Why shards: httpcore's ``AsyncConnectionPool`` walks every connection it holds (and polls each idle one's
    socket) whenever a request starts or ends, so its CPU per request grows with its size
    (https://github.com/encode/httpcore/issues/1035): one pool of 128 connections at 128 requests in flight cost
    18 ms per request. And it closes *all* its idle connections while it holds more than
    ``max_keepalive_connections`` in total. Many small pools, each keeping all its connections alive, avoid both.

    Certificates are always verified (``httpx.create_ssl_context()``: certifi's bundle, or the one
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` names; or the ``ssl_context`` given), one context for all shards.
    ``proxy`` (see ``environment_proxy``) sends every request through an HTTP(S) proxy, tunnelling to https
    endpoints. Redirects are never followed here (a transport does not); answers come back read in full (small
    JSON documents), so a connection is free again as soon as a request returns.
    """

    def __init__(
        self, *, shards: int, per_shard: int, proxy: str | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        if shards < 1 or per_shard < 1:
            raise ValueError("PooledShards needs at least one shard of at least one connection")
        self.ssl_context: ssl.SSLContext = ssl_context or httpx.create_ssl_context()
        self._shards = [_pool(self.ssl_context, per_shard, proxy) for _ in range(shards)]
        self._busy = [0] * shards  # requests each shard is serving

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._busy)), key=self._busy.__getitem__)
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        self._busy[index] += 1
        try:
            response = await self._shards[index].handle_async_request(core_request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        except Exception as error:
            for core_error, httpx_error in _ERRORS:
                if isinstance(error, core_error):
                    raise httpx_error(str(error), request=request) from error
            raise
        finally:
            self._busy[index] -= 1
        # Built from bytes, the body is decoded (Content-Encoding) and loaded at once.
        return httpx.Response(response.status, headers=response.headers, content=body, extensions=response.extensions)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


def _pool(ssl_context: ssl.SSLContext, connections: int, proxy: str | None) -> httpcore.AsyncConnectionPool:
    if proxy is None:
        return httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, max_connections=connections, max_keepalive_connections=connections
        )
    parsed = httpx.Proxy(proxy)  # splits user:password@ off into a Proxy-Authorization header
    if parsed.url.scheme not in ("http", "https"):
        raise ValueError(f"proxy scheme {parsed.url.scheme!r} is not supported (use an http:// or https:// proxy)")
    return httpcore.AsyncHTTPProxy(
        proxy_url=httpcore.URL(
            scheme=parsed.url.raw_scheme,
            host=parsed.url.raw_host,
            port=parsed.url.port,
            target=parsed.url.raw_path,
        ),
        proxy_auth=parsed.raw_auth,
        proxy_headers=parsed.headers.raw,
        ssl_context=ssl_context,
        # An https:// proxy's certificate is verified against the same bundle (httpcore refuses one for http://).
        proxy_ssl_context=ssl_context if parsed.url.scheme == "https" else None,
        max_connections=connections,
        max_keepalive_connections=connections,
    )


def environment_proxy(endpoint: httpx.URL) -> str | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY / ALL_PROXY name for the endpoint, unless NO_PROXY exempts it."""
    if urllib.request.proxy_bypass(endpoint.host):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(endpoint.scheme) or proxies.get("all")
